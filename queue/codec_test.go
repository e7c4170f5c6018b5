package queue

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

func TestJobCodecRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 123).UTC()
	j := Job{
		NotificationID: "n1", User: "u1", DeviceID: "d1", Platform: "apns", AppID: "a",
		Token: "tok", Sandbox: true, Tag: "t", SubTag: "s", Payload: []byte(`{"x":1}`),
		CreatedAt: now, NotBefore: now.Add(time.Second), ExpiresAt: now.Add(time.Hour),
		Attempts: 3, NextAttempt: now.Add(time.Minute), LastError: "boom", Origin: "portal.example.com",
	}
	got, err := decodeJob("id1", encodeJob(nil, &j, ""), true)
	if err != nil {
		t.Fatal(err)
	}
	j.ID = "id1"
	if !reflect.DeepEqual(got.Job, j) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got.Job, j)
	}
}

// A record written before Origin existed (version 1) still decodes, with
// an empty Origin: upgrading keeps the queue.
func TestJobCodecReadsVersion1(t *testing.T) {
	t.Parallel()
	b := []byte{jobVersion1, flagSandbox}
	for _, n := range []int64{5, 0, 7, 9} { // created, not before, expires, next attempt
		b = binary.AppendVarint(b, n)
	}
	b = binary.AppendUvarint(b, 2)
	for _, s := range []string{"n", "u", "d", "fcm", "app", "tok", "tag", "sub", "err"} {
		b = appendString(b, s)
	}
	b = append(b, "payload"...)
	got, err := decodeJob("x", b, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != "" || got.LastError != "err" || string(got.Payload) != "payload" || !got.Sandbox || got.Attempts != 2 {
		t.Fatalf("v1 record decoded as %+v", got.Job)
	}
	if _, err := decodeJob("x", append([]byte{9}, b[1:]...), true); err == nil {
		t.Fatal("unknown version decoded")
	}
}
