package queue

import (
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeJob checks that no stored bytes can crash the job, status and
// dead-letter readers, and that a job record that decodes survives a
// rewrite unchanged (so a read-modify-write never alters fields it did
// not touch).
func FuzzDecodeJob(f *testing.F) {
	now := time.Unix(1700000000, 5)
	j := &Job{NotificationID: "n_1", User: "42", DeviceID: "d", Platform: "fcm", AppID: "App", Token: "t:APA91b",
		Tag: "IM", SubTag: "IM_1", Attempts: 3, CreatedAt: now, ExpiresAt: now.Add(time.Hour), NextAttempt: now,
		Payload: []byte(`{"title":"t"}`), Sandbox: true, Origin: "portal.example"}
	f.Add(encodeJob(nil, j, ""))
	f.Add(encodeJob(nil, j, "p_1"))
	f.Add(encodeStatus(nil, &statusRecord{State: StateRetrying, LastError: "x", Attempts: 2, UpdatedAt: now}))
	f.Add(encodeDead(nil, now, ReasonExpired, encodeJob(nil, j, "")))
	f.Add([]byte{jobVersion1, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		if st, err := decodeStatus(v); err == nil {
			again, err := decodeStatus(encodeStatus(nil, &st))
			if err != nil || !reflect.DeepEqual(again, st) {
				t.Fatalf("status rewrite: %+v -> %+v (%v)", st, again, err)
			}
		}
		_, _, _, _ = decodeDead(v)
		sj, err := decodeJob("id", v, true)
		if err != nil {
			return
		}
		again, err := decodeJob("id", encodeJob(nil, &sj.Job, sj.payloadRef), true)
		if err != nil || !reflect.DeepEqual(again, sj) {
			t.Fatalf("job rewrite:\n%+v\n%+v (%v)", sj, again, err)
		}
	})
}
