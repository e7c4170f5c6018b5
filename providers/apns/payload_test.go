package apns

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

func TestOverridesMergeLast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	n := &providers.Notification{
		Title: "Anna", Body: "Hi", Sound: "default", CollapseID: "c1", Data: json.RawMessage(`{"chat":{"id":1,"kind":"dm"},"drop":true}`),
		APNs: json.RawMessage(`{
			"aps": {"alert": {"body": "Hello"}, "sound": null, "interruption-level": "time-sensitive"},
			"chat": {"kind": "group"},
			"drop": null,
			"extra": [1, 2],
			"headers": {"apns-priority": "5", "APNS-Collapse-Id": "c2", "apns-expiration": 0, "apns-push-type": "liveactivity"}
		}`),
	}
	if r := e.send1(t, msg(tok(0), n)); r.Class != providers.Delivered {
		t.Fatalf("%+v", r)
	}
	req := e.prod.Received()[0]
	want := `{"aps":{"alert":{"body":"Hello","title":"Anna"},"interruption-level":"time-sensitive"},"chat":{"id":1,"kind":"group"},"extra":[1,2]}`
	if string(req.Payload) != want {
		t.Errorf("payload\n got %s\nwant %s", req.Payload, want)
	}
	if req.Priority != "5" || req.CollapseID != "c2" || req.Expiration != "0" || req.PushType != "liveactivity" ||
		req.Topic != topic+".push-type.liveactivity" {
		t.Errorf("headers: priority %q collapse %q expiration %q type %q topic %q",
			req.Priority, req.CollapseID, req.Expiration, req.PushType, req.Topic)
	}
}

func TestOverrideTopicAndID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	id := "123e4567-e89b-12d3-a456-426655440000"
	n := &providers.Notification{Body: "x", APNs: json.RawMessage(`{"headers":{"apns-topic":"com.example.widget","apns-id":"` + id + `"}}`)}
	r := e.send1(t, msg(tok(0), n))
	if r.Class != providers.Delivered || r.ProviderID != id || e.prod.Received()[0].Topic != "com.example.widget" {
		t.Fatalf("%+v", r)
	}
}

func TestBadOverridesAreRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	bad := []string{
		`{"headers":{"apns-collapse-id":"a\r\nX-Evil: 1"}}`,
		`{"headers":{"apns-topic":"t\nx"}}`,
		`{"headers":{"apns-id":"a\u0000b"}}`,
		`{"headers":{"X-Forwarded-For":"1.2.3.4"}}`,
		`{"headers":{"apns-unknown":"1"}}`,
		`{"headers":{"apns-priority":"7"}}`,
		`{"headers":{"apns-expiration":"tomorrow"}}`,
		`{"headers":{"apns-push-type":"shout"}}`,
		`{"headers":{"apns-topic":{"a":1}}}`,
		`{"headers":"apns-topic: x"}`,
		`{"aps":"not an object"}`,
		`[1,2]`,
		`{"a":1} {"b":2}`,
	}
	for _, o := range bad {
		n := &providers.Notification{Body: "x", APNs: json.RawMessage(o)}
		if err := CheckNotification(n); !errors.Is(err, ErrInvalidNotification) {
			t.Errorf("CheckNotification(%s) = %v", o, err)
		}
		if r := e.send1(t, msg(tok(0), n)); r.Class != providers.Rejected || !errors.Is(r.Err, ErrInvalidNotification) {
			t.Errorf("override %s: %+v", o, r)
		}
	}
	if got := e.prod.Requests(); got != 0 {
		t.Errorf("fake received %d requests", got)
	}
}

func TestInvalidUnifiedFields(t *testing.T) {
	t.Parallel()
	bad := []providers.Notification{
		{PushType: "shout"},
		{Priority: "urgent"},
		{Data: json.RawMessage(`[1]`)},
		{Data: json.RawMessage(`{"aps":{}}`)},
		{CollapseID: strings.Repeat("c", 65)},
	}
	for _, n := range bad {
		if err := CheckNotification(&n); !errors.Is(err, ErrInvalidNotification) {
			t.Errorf("CheckNotification(%+v) = %v", n, err)
		}
	}
	if err := CheckNotification(nil); !errors.Is(err, ErrInvalidNotification) {
		t.Errorf("nil: %v", err)
	}
}

func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	// Find the body length that lands exactly on the limit.
	probe := &providers.Notification{Body: ""}
	base, err := PayloadSize(probe)
	if err != nil {
		t.Fatal(err)
	}
	// {"aps":{}} grows by {"alert":{"body":""}} plus the text.
	overhead := len(`{"aps":{"alert":{"body":""}}}`) - base
	atLimit := &providers.Notification{Body: strings.Repeat("x", MaxPayloadSize-base-overhead)}
	if size, err := PayloadSize(atLimit); err != nil || size != MaxPayloadSize {
		t.Fatalf("PayloadSize = %d, %v; want %d", size, err, MaxPayloadSize)
	}
	if err := CheckNotification(atLimit); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	over := &providers.Notification{Body: atLimit.Body + "x"}
	var tooLarge *PayloadTooLargeError
	if err := CheckNotification(over); !errors.As(err, &tooLarge) || !errors.Is(err, ErrPayloadTooLarge) ||
		tooLarge.Size != MaxPayloadSize+1 || tooLarge.Limit != MaxPayloadSize {
		t.Fatalf("one byte over: %v", err)
	}
	// HTML escaping counts: "<" is six bytes on the wire.
	escaped := &providers.Notification{Body: strings.Repeat("x", MaxPayloadSize-base-overhead-5) + "<"}
	if err := CheckNotification(escaped); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("escaped '<' not counted as sent: %v", err)
	}
	voip := &providers.Notification{PushType: providers.PushVoIP, Data: json.RawMessage(`{"d":"` + strings.Repeat("x", 5000) + `"}`)}
	if err := CheckNotification(voip); err != nil {
		t.Fatalf("VoIP under 5120: %v", err)
	}

	// What PayloadSize measures is what the fake receives.
	res := e.p.Send(t.Context(), []providers.Message{msg(tok(0), atLimit), msg(tok(1), over), msg(tok(2), voip)})
	if res[0].Class != providers.Delivered || res[2].Class != providers.Delivered {
		t.Fatalf("at limit / voip: %+v %+v", res[0], res[2])
	}
	for _, req := range e.prod.Received() {
		if req.Token == tok(0) && len(req.Payload) != MaxPayloadSize {
			t.Errorf("sent %d bytes, PayloadSize said %d", len(req.Payload), MaxPayloadSize)
		}
	}
	if res[1].Class != providers.Rejected || res[1].Reason != "PayloadTooLarge" || e.prod.Requests() != 2 {
		t.Errorf("over the limit: %+v (fake got %d requests)", res[1], e.prod.Requests())
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	dst := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": 1, "c": map[string]any{"k": 1}}
	merge(dst, map[string]any{"a": map[string]any{"y": 3, "z": nil}, "b": map[string]any{"n": 1}, "c": nil, "d": "new"})
	got, _ := json.Marshal(dst)
	if want := `{"a":{"x":1,"y":3},"b":{"n":1},"d":"new"}`; string(got) != want {
		t.Errorf("merge = %s, want %s", got, want)
	}
}
