package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pushpull/pushpull/web/apierr"
)

// FuzzDecodeRequests feeds arbitrary bodies to the decoder of every
// publisher request type: it never panics, every failure is a 400 API
// error, and a push body that decodes converts to a service request or a
// 400 naming a field.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"notifications":[{"users":["42"],"title":"t","expiry":60,"delay":5,"apns":{"headers":{"apns-priority":"5"}}}]}`,
		`{"events":[{"users":["1"],"module_id":"im","command":"c","params":{"a":[1,{"b":null}]},"expiry":0,"ack_timeout":"30s"}]}`,
		`{"user":"42","device_id":"d","platform":"fcm","token":"t:APA91b"}`,
		`{"users":["42"],"tag":"x"}`, `{"ids":["a"],"all":false}`, "{\"x\":\"\xff\"}", `[[[[`, `{"expiry":1e400}`,
	} {
		f.Add([]byte(s))
	}
	h := &pushHandlers{limits: DefaultLimits, now: time.Now}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&PushRequest{}, &EventsRequest{}, &DeviceBody{}, &CancelRequest{}, &map[string]any{}}
		for _, v := range targets {
			err := DecodeBytes(body, v)
			if err == nil {
				continue
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status() != http.StatusBadRequest {
				t.Fatalf("DecodeBytes(%T): %#v", v, err)
			}
		}
		var pr PushRequest
		if DecodeBytes(body, &pr) != nil {
			return
		}
		for i := range pr.Notifications {
			if _, err := h.toRequest(&pr.Notifications[i], time.Now()); err != nil && err.Field == "" {
				t.Fatalf("toRequest error without a field: %v", err)
			}
		}
	})
}
