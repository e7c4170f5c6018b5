package push

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
)

// TestEndToEndBothProviders: Push -> queue -> running dispatcher -> the
// real apns2 and firebase clients -> the fakes, with the payload checked on
// both sides, and the status of every job "delivered".
func TestEndToEndBothProviders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	a := e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	f := e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.register(devices.Device{User: "43", Platform: devices.PlatformFCM, Token: fcmToken(2)})
	e.start()

	res := e.push(Request{
		Users: []string{"42", "43", "44"},
		Notification: providers.Notification{
			Title: "Anna", Subtitle: "chat", Body: "Hi there", Badge: intp(3), Sound: "default",
			Category: "IM_MESSAGE", ThreadID: "chat17", Data: json.RawMessage(`{"chat":17}`),
		},
		Tag: "IM_MESS", SubTag: "IM_MESS_17",
	})
	if len(res) != 1 || res[0].Jobs != 3 || !slices.Equal(res[0].NoDevice, []string{"44"}) || !strings.HasPrefix(res[0].ID, "n_") || len(res[0].ID) != 28 {
		t.Fatalf("result = %+v", res)
	}
	ctx := waitCtx(t)
	if err := e.prod.WaitDelivered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.fcm.WaitDelivered(ctx, 2); err != nil {
		t.Fatal(err)
	}

	got := apnsFor(e.prod, a.Token)
	if len(got) != 1 {
		t.Fatalf("APNs got %d pushes for the device", len(got))
	}
	r := got[0]
	if r.Topic != apnsTopic || r.PushType != "alert" || r.CollapseID != "IM_MESS_17" || r.Expiration == "" {
		t.Errorf("APNs headers: topic %q push-type %q collapse %q expiration %q", r.Topic, r.PushType, r.CollapseID, r.Expiration)
	}
	var body struct {
		APS struct {
			Alert    map[string]string `json:"alert"`
			Badge    int               `json:"badge"`
			Sound    string            `json:"sound"`
			Category string            `json:"category"`
			Thread   string            `json:"thread-id"`
		} `json:"aps"`
		Chat int `json:"chat"`
	}
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		t.Fatal(err)
	}
	if body.APS.Alert["title"] != "Anna" || body.APS.Alert["subtitle"] != "chat" || body.APS.Alert["body"] != "Hi there" ||
		body.APS.Badge != 3 || body.APS.Sound != "default" || body.APS.Category != "IM_MESSAGE" ||
		body.APS.Thread != "chat17" || body.Chat != 17 {
		t.Errorf("APNs payload = %s", r.Payload)
	}

	fr := fcmFor(e.fcm, f.Token)
	if len(fr) != 1 {
		t.Fatalf("FCM got %d sends for the device", len(fr))
	}
	var msg struct {
		Notification struct{ Title, Body string } `json:"notification"`
		Data         map[string]string            `json:"data"`
		Android      struct {
			CollapseKey string `json:"collapse_key"`
			TTL         string `json:"ttl"`
		} `json:"android"`
	}
	if err := json.Unmarshal(fr[0].Raw, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Notification.Title != "Anna" || msg.Notification.Body != "Hi there" || msg.Data["chat"] != "17" ||
		msg.Android.CollapseKey != "IM_MESS_17" || msg.Android.TTL == "" {
		t.Errorf("FCM message = %s", fr[0].Raw)
	}
	if fr[0].Project != fcmProj || fr[0].Auth == "" {
		t.Errorf("FCM send not authenticated through OAuth: project %q auth %q", fr[0].Project, fr[0].Auth)
	}

	waitFor(t, "all jobs delivered", func() bool {
		st, err := e.svc.Status(context.Background(), res[0].ID)
		return err == nil && st.States[queue.StateDelivered] == 3
	})
}

// TestPushIsDurable: jobs accepted by Push are in the file before any
// dispatch, and come back after the queue is reopened.
func TestPushIsDurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	res := e.push(Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x"}})
	if err := e.q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, err := queue.Open(e.db, queue.Options{Now: e.clock.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	js, err := q2.Status(context.Background(), res[0].ID)
	if err != nil || len(js) != 1 || js[0].State != queue.StateQueued {
		t.Fatalf("after reopen: %+v, %v", js, err)
	}
}

// TestWhenOnline: skip leaves online users out, silent sends them a
// content-available push without alert, send ignores presence.
func TestWhenOnline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true, push: func(o *Options) {
		o.IsOnline = func(u string) bool { return u == "42" }
	}})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	e.register(devices.Device{User: "43", Platform: devices.PlatformAPNs, Token: apnsToken(2)})
	n := providers.Notification{Title: "T", Body: "B", Sound: "default", Data: json.RawMessage(`{"k":1}`)}
	res := e.push(
		Request{Users: []string{"42", "43"}, Notification: n, WhenOnline: WhenOnlineSkip},
		Request{Users: []string{"42"}, Notification: n, WhenOnline: WhenOnlineSilent},
		Request{Users: []string{"42"}, Notification: n}, // send (default)
	)
	if res[0].Jobs != 1 || !slices.Equal(res[0].SkippedOnline, []string{"42"}) {
		t.Errorf("skip: %+v", res[0])
	}
	if res[1].Jobs != 1 || len(res[1].SkippedOnline) != 0 || res[2].Jobs != 1 {
		t.Errorf("silent/send: %+v %+v", res[1], res[2])
	}
	for e.dispatch() > 0 {
	}
	got := apnsFor(e.prod, apnsToken(1))
	if len(got) != 2 {
		t.Fatalf("online user got %d pushes, want 2 (silent + send)", len(got))
	}
	silent, loud := 0, 0
	for _, r := range got {
		var p struct {
			APS map[string]any `json:"aps"`
			K   int            `json:"k"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch {
		case p.APS["content-available"] == float64(1) && p.APS["alert"] == nil && p.APS["sound"] == nil:
			silent++
			if r.PushType != "background" || r.Priority != "5" || p.K != 1 {
				t.Errorf("silent push: type %q priority %q payload %s", r.PushType, r.Priority, r.Payload)
			}
		case p.APS["alert"] != nil:
			loud++
		}
	}
	if silent != 1 || loud != 1 {
		t.Errorf("silent %d, loud %d; want 1 and 1", silent, loud)
	}
}

// TestVoIP: a VoIP push goes to the device's VoIP token on the VoIP topic;
// devices without one (and FCM devices) are skipped.
func TestVoIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(101)})
	e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.register(devices.Device{User: "43", Platform: devices.PlatformAPNs, Token: apnsToken(2)})
	res := e.push(Request{Users: []string{"42", "43"}, Notification: providers.Notification{
		PushType: providers.PushVoIP, Data: json.RawMessage(`{"call":"c1"}`)}})
	if res[0].Jobs != 1 || !slices.Equal(res[0].NoDevice, []string{"43"}) {
		t.Fatalf("result %+v", res[0])
	}
	e.dispatch()
	got := apnsFor(e.prod, apnsToken(101))
	if len(got) != 1 || got[0].Topic != apnsTopic+".voip" || got[0].PushType != "voip" {
		t.Fatalf("voip pushes: %+v", got)
	}
	if len(apnsFor(e.prod, apnsToken(1))) != 0 || e.fcm.Requests() != 0 {
		t.Error("a VoIP push went to a regular token")
	}
}

// TestAppFilterAndDirectDevices: app_id limits a user's devices; direct
// device targets are sent without the registry.
func TestAppFilterAndDirectDevices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	res := e.push(
		Request{Users: []string{"42"}, AppID: fcmApp, Notification: providers.Notification{Body: "a"}},
		Request{Devices: []DeviceTarget{{Platform: "apns", Token: strings.ToUpper(apnsToken(9)), AppID: apnsApp}},
			Notification: providers.Notification{Body: "b"}},
	)
	if res[0].Jobs != 1 || res[1].Jobs != 1 {
		t.Fatalf("results %+v", res)
	}
	e.dispatch()
	if len(fcmFor(e.fcm, fcmToken(1))) != 1 || len(apnsFor(e.prod, apnsToken(1))) != 0 {
		t.Error("app_id filter not applied")
	}
	if len(apnsFor(e.prod, apnsToken(9))) != 1 {
		t.Error("direct device target (upper-case hex) not delivered")
	}
}

// TestCollapseBySubTag: a newer notification with the same user and
// sub_tag replaces the queued one; only the last is sent.
func TestCollapseBySubTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	var ids []string
	for _, body := range []string{"one", "two", "three"} {
		r := e.push(Request{Users: []string{"42"}, SubTag: "IM_MESS_17", Notification: providers.Notification{Body: body}})
		ids = append(ids, r[0].ID)
	}
	for i, id := range ids[:2] {
		if st := e.status(id); st.Jobs[0].State != queue.StateCollapsed {
			t.Errorf("notification %d state %q, want collapsed", i, st.Jobs[0].State)
		}
	}
	e.dispatch()
	got := apnsFor(e.prod, apnsToken(1))
	if len(got) != 1 || !strings.Contains(string(got[0].Payload), `"three"`) {
		t.Fatalf("sent %d pushes: %+v", len(got), got)
	}
	if st := e.status(ids[2]); st.Jobs[0].State != queue.StateDelivered {
		t.Errorf("last state %q", st.Jobs[0].State)
	}
}

// TestCancel removes queued jobs of the named users and tag only.
func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.register(devices.Device{User: "43", Platform: devices.PlatformAPNs, Token: apnsToken(2)})
	res := e.push(
		Request{Users: []string{"42", "43"}, Tag: "IM_MESS", Notification: providers.Notification{Body: "x"}},
		Request{Users: []string{"42"}, Tag: "OTHER", Notification: providers.Notification{Body: "y"}},
	)
	n, err := e.svc.Cancel(context.Background(), []string{"42"}, "IM_MESS", "")
	if err != nil || n != 2 {
		t.Fatalf("Cancel = %d, %v; want 2", n, err)
	}
	if _, err := e.svc.Cancel(context.Background(), nil, "", ""); !isFieldErr(err, "tag") {
		t.Errorf("cancel without tag: %v", err)
	}
	st := e.status(res[0].ID)
	if st.States[queue.StateCancelled] != 2 || st.States[queue.StateQueued] != 1 {
		t.Errorf("states %v", st.States)
	}
	for e.dispatch() > 0 {
	}
	if len(apnsFor(e.prod, apnsToken(2))) != 1 || len(apnsFor(e.prod, apnsToken(1))) != 1 || len(fcmFor(e.fcm, fcmToken(1))) != 1 {
		t.Errorf("sent: apns42 %d apns43 %d fcm42 %d; want 1 (OTHER), 1, 1 (OTHER)",
			len(apnsFor(e.prod, apnsToken(1))), len(apnsFor(e.prod, apnsToken(2))), len(fcmFor(e.fcm, fcmToken(1))))
	}
}

// TestIdempotencyKey: the same key gives the same result and stores and
// sends nothing twice.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	req := Request{Users: []string{"42"}, IdempotencyKey: "msg-123", Notification: providers.Notification{Body: "x"}}
	first := e.push(req, Request{Users: []string{"42"}, Notification: providers.Notification{Body: "unkeyed"}})
	second := e.push(req)
	if first[0].ID != second[0].ID || second[0].Jobs != 1 {
		t.Fatalf("first %+v, second %+v", first[0], second[0])
	}
	for e.dispatch() > 0 {
	}
	if got := len(apnsFor(e.prod, apnsToken(1))); got != 2 {
		t.Errorf("device got %d pushes, want 2 (keyed once + unkeyed)", got)
	}
}

// TestStatusUnknown maps the queue's not-found to ErrNotFound.
func TestStatusUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	if _, err := e.svc.Status(context.Background(), "n_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

// TestDeferredSend: send_at holds a job until then, and expiry counts from
// send_at.
func TestDeferredSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	res := e.push(Request{Users: []string{"42"}, SendAt: t0.Add(time.Minute), Expiry: 30 * time.Second,
		Notification: providers.Notification{Body: "later"}})
	if n := e.dispatch(); n != 0 {
		t.Fatalf("leased %d jobs before send_at", n)
	}
	if st := e.status(res[0].ID); st.Jobs[0].NextAttempt == nil || !st.Jobs[0].NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Errorf("next attempt %v", st.Jobs[0].NextAttempt)
	}
	e.clock.Advance(time.Minute)
	if n := e.dispatch(); n != 1 || e.fcm.Delivered() != 1 {
		t.Fatalf("at send_at: leased %d, delivered %d", n, e.fcm.Delivered())
	}
}

func isFieldErr(err error, field string) bool {
	var fe *FieldError
	return errors.As(err, &fe) && fe.Field == field
}
