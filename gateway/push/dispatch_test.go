package push

import (
	"context"
	"crypto/hmac"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/queue"
)

// TestTokenInvalidRemovesDevice: APNs 410 Unregistered and FCM
// UNREGISTERED remove the device, drop the job, stop further sends, and
// the feedback webhook gets a correctly signed report for each.
func TestTokenInvalidRemovesDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{feedback: true})
	e.fb.failFirst = 1 // the first POST fails: the report must be retried
	a := e.register(devices.Device{ID: "ios-1", User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	f := e.register(devices.Device{ID: "android-1", User: "43", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.prod.Script(a.Token, fake.Behavior{Status: 410, Reason: fake.APNsUnregistered})
	e.fcm.Script(f.Token, fake.FCMBehavior{ErrorCode: fake.FCMUnregistered})
	e.start()

	res := e.push(Request{Users: []string{"42", "43"}, Notification: providers.Notification{Body: "x"}})
	waitFor(t, "both jobs dropped", func() bool {
		st, err := e.svc.Status(context.Background(), res[0].ID)
		return err == nil && st.States[queue.StateDropped] == 2
	})
	for _, id := range []string{a.ID, f.ID} {
		if _, err := e.reg.Get(context.Background(), id); !errors.Is(err, devices.ErrNotFound) {
			t.Errorf("device %s still registered: %v", id, err)
		}
	}
	waitFor(t, "two feedback reports", func() bool { r, _, _ := e.fb.reports(t); return len(r) == 2 })
	reps, sigs, bodies := e.fb.reports(t)
	slices.SortFunc(reps, func(x, y Report) int { return strings.Compare(x.User, y.User) })
	want := []Report{
		{User: "42", DeviceID: "ios-1", Platform: "apns", AppID: apnsApp, Token: a.Token, Reason: "apns: Unregistered"},
		{User: "43", DeviceID: "android-1", Platform: "fcm", AppID: fcmApp, Token: f.Token, Reason: "fcm: UNREGISTERED"},
	}
	if !slices.Equal(reps, want) {
		t.Errorf("reports = %+v\nwant %+v", reps, want)
	}
	for i, b := range bodies {
		if !hmac.Equal([]byte(sigs[i]), []byte(Sign([]byte("feedback-secret"), b))) {
			t.Errorf("signature %q does not match body %s", sigs[i], b)
		}
	}

	// Further pushes find no device and send nothing.
	res = e.push(Request{Users: []string{"42", "43"}, Notification: providers.Notification{Body: "y"}})
	if res[0].Jobs != 0 || len(res[0].NoDevice) != 2 {
		t.Errorf("after removal: %+v", res[0])
	}
	if n := len(apnsFor(e.prod, a.Token)) + len(fcmFor(e.fcm, f.Token)); n != 2 {
		t.Errorf("dead tokens received %d sends, want 2", n)
	}
}

// TestBadDeviceTokenSandbox: a sandbox device is sent to the sandbox host;
// BadDeviceToken there removes it; production sees nothing.
func TestBadDeviceTokenSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	d := e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1), Sandbox: true})
	e.sandb.Script(d.Token, fake.Behavior{Status: 400, Reason: fake.APNsBadDeviceToken})
	res := e.push(Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x"}})
	e.dispatch()
	if len(apnsFor(e.sandb, d.Token)) != 1 || e.prod.Requests() != 0 {
		t.Fatalf("sandbox got %d, production %d", len(apnsFor(e.sandb, d.Token)), e.prod.Requests())
	}
	st := e.status(res[0].ID)
	if st.Jobs[0].State != queue.StateDropped || st.Jobs[0].LastError != "apns: BadDeviceToken" {
		t.Errorf("job %+v", st.Jobs[0])
	}
	if _, err := e.reg.Get(context.Background(), d.ID); !errors.Is(err, devices.ErrNotFound) {
		t.Errorf("device kept: %v", err)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After 30s is not sent again
// before 30s have passed, and is delivered after.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	d := e.register(devices.Device{User: "42", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.fcm.Script(d.Token, fake.FCMBehavior{ErrorCode: fake.FCMQuotaExceeded, RetryAfter: 30 * time.Second, Times: 1})
	res := e.push(Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x"}})
	e.dispatch()
	st := e.status(res[0].ID)
	if j := st.Jobs[0]; j.State != queue.StateRetrying || j.Attempts != 1 || j.NextAttempt.Before(t0.Add(30*time.Second)) {
		t.Fatalf("after 429: %+v (next %v)", j, j.NextAttempt)
	}
	e.clock.Advance(29 * time.Second)
	if n := e.dispatch(); n != 0 || e.fcm.Requests() != 1 {
		t.Fatalf("re-sent before Retry-After: leased %d, requests %d", n, e.fcm.Requests())
	}
	e.clock.Advance(2 * time.Second)
	// The retried job must still carry its payload (a short one, stored
	// inline by the queue): a queue that loses it on Retry dead-letters the
	// job here as "undecodable payload".
	if n := e.dispatch(); n != 1 || e.fcm.Delivered() != 1 {
		t.Fatalf("after Retry-After: leased %d, delivered %d; job %+v", n, e.fcm.Delivered(), e.status(res[0].ID).Jobs[0])
	}
}

// TestProviderDown: APNs answers 503 for a while. The breaker pauses it
// (no retry storm: while paused nothing is sent), FCM keeps flowing, jobs
// back off, everything is delivered after recovery, none is lost, and a
// job whose expiry passes during the outage is never sent after it.
func TestProviderDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	const n = 20
	var users []string
	for i := range n {
		u := "u" + string(rune('a'+i))
		users = append(users, u)
		e.register(devices.Device{User: u, Platform: devices.PlatformAPNs, Token: apnsToken(i)})
	}
	e.register(devices.Device{User: "android", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	e.register(devices.Device{User: "short", Platform: devices.PlatformAPNs, Token: apnsToken(99)})
	e.prod.SetDefault(fake.Behavior{Status: 503, Reason: fake.APNsServiceUnavailable})

	res := e.push(
		Request{Users: append(users, "android"), Notification: providers.Notification{Body: strings.Repeat("x", 200)}},
		Request{Users: []string{"short"}, Expiry: 10 * time.Second, Notification: providers.Notification{Body: "short"}},
	)
	e.dispatch()
	if e.fcm.Delivered() != 1 {
		t.Fatalf("FCM blocked by the APNs outage: delivered %d", e.fcm.Delivered())
	}
	if e.prod.Requests() != n+1 {
		t.Fatalf("first pass: %d APNs requests, want %d", e.prod.Requests(), n+1)
	}
	stats := e.svc.ProviderStats()
	if stats[0].Platform != "apns" || stats[0].PausedUntil == nil || stats[1].PausedUntil != nil {
		t.Fatalf("breaker: %+v", stats)
	}

	// During the outage: each pass either finds APNs paused (sends
	// nothing) or sends the due jobs once; the clock jumps to each next
	// due time, so a hot loop would show as many requests.
	recoverAt := t0.Add(2 * time.Minute)
	var shortSentAfterExpiry bool
	passes := 0
	for e.clock.Now().Before(recoverAt) {
		at, ok := e.q.NextDue()
		if !ok {
			t.Fatal("jobs lost during the outage")
		}
		e.clock.Set(at)
		before := len(apnsFor(e.prod, apnsToken(99)))
		e.dispatch()
		if !e.clock.Now().Before(t0.Add(10*time.Second)) && len(apnsFor(e.prod, apnsToken(99))) > before {
			shortSentAfterExpiry = true
		}
		passes++
	}
	if shortSentAfterExpiry {
		t.Error("a push was sent after its expiry")
	}
	// Exponential pauses and backoff: 2 minutes of outage cost few
	// attempts per job, not one per pass.
	if got := e.prod.Requests(); got > 8*(n+1) {
		t.Errorf("%d APNs requests during a 2-minute outage (%d passes): retry storm", got, passes)
	}
	if st := e.svc.ProviderStats()[0]; st.Paused == 0 {
		t.Errorf("no job was held back by the breaker: %+v", st)
	}

	e.prod.SetDefault(fake.Behavior{})
	for range 100 {
		at, ok := e.q.NextDue()
		if !ok {
			break
		}
		e.clock.Set(at)
		e.dispatch()
	}
	st := e.status(res[0].ID)
	if st.States[queue.StateDelivered] != n+1 {
		t.Errorf("after recovery: %v", st.States)
	}
	for _, u := range users {
		if len(apnsFor(e.prod, apnsToken(slices.Index(users, u)))) == 0 {
			t.Errorf("user %s never reached", u)
		}
	}
	// Passes that found APNs paused put the jobs back without counting
	// an attempt: each job's attempts are the requests that failed.
	for _, j := range st.Jobs {
		if j.Platform != "apns" {
			continue
		}
		i := slices.Index(users, j.User)
		if i < 0 {
			continue
		}
		if sent := len(apnsFor(e.prod, apnsToken(i))); j.Attempts != sent-1 {
			t.Errorf("job of %s: %d attempts for %d requests (paused passes counted?)", j.User, j.Attempts, sent)
		}
	}
	if short := e.status(res[1].ID); short.Jobs[0].State != queue.StateExpired && short.Jobs[0].State != queue.StateDead {
		t.Errorf("short-lived job: %+v", short.Jobs[0])
	}
}

// TestMisconfiguration: a wrong signing key (InvalidProviderToken), an app
// the provider does not have, and a platform without provider all go to
// dead letters with a reason, and the tokens stay registered.
func TestMisconfiguration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true, wrongAPNsKey: true, noFCM: true})
	a := e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	other := e.register(devices.Device{User: "43", Platform: devices.PlatformAPNs, Token: apnsToken(2), AppID: "OtherApp"})
	f := e.register(devices.Device{User: "44", Platform: devices.PlatformFCM, Token: fcmToken(1)})
	res := e.push(Request{Users: []string{"42", "43", "44"}, Notification: providers.Notification{Body: "x"}})
	e.dispatch()
	st := e.status(res[0].ID)
	reasons := map[string]string{}
	for _, j := range st.Jobs {
		if j.State != queue.StateDead {
			t.Errorf("job of %s: state %q", j.User, j.State)
		}
		reasons[j.User] = j.LastError
	}
	if reasons["42"] != "apns: InvalidProviderToken" ||
		reasons["43"] != `no apns app configured for app_id "OtherApp"` ||
		reasons["44"] != `no provider configured for platform "fcm"` {
		t.Errorf("reasons: %q", reasons)
	}
	for _, d := range []devices.Device{a, other, f} {
		if _, err := e.reg.Get(context.Background(), d.ID); err != nil {
			t.Errorf("device %s removed on a config error: %v", d.ID, err)
		}
	}
	dead, _, err := e.q.ListDead(context.Background(), "", 10)
	if err != nil || len(dead) != 3 {
		t.Errorf("dead letters: %d, %v", len(dead), err)
	}
}

// TestStopAbandonsSlowSends: Stop whose ctx ends while a send hangs
// returns, and the job stays stored (leased, due again later), not acked,
// dead or retried.
func TestStopAbandonsSlowSends(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	d := e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	e.prod.Script(d.Token, fake.Behavior{Delay: 20 * time.Second})
	e.start()
	res := e.push(Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x"}})
	waitFor(t, "the job to be leased", func() bool { qs, _ := e.q.Stats(); return qs.InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.svc.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want deadline exceeded", err)
	}
	if err := e.svc.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	if err := e.svc.Start(); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v", err)
	}
	st := e.status(res[0].ID)
	if j := st.Jobs[0]; j.Attempts != 0 || (j.State != queue.StateSending && j.State != queue.StateQueued) {
		t.Errorf("abandoned job: %+v", j)
	}
	qs, _ := e.q.Stats()
	if qs.InFlight != 1 {
		t.Errorf("in flight %d, want 1 (lease kept until timeout)", qs.InFlight)
	}
}

// TestStopWaitsForSends: a Stop with time to spare lets the send finish
// and acks it.
func TestStopWaitsForSends(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	d := e.register(devices.Device{User: "42", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	e.prod.Script(d.Token, fake.Behavior{Delay: 300 * time.Millisecond})
	e.start()
	res := e.push(Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x"}})
	waitFor(t, "the send to start", func() bool { return e.prod.Requests() == 1 })
	if err := e.svc.Stop(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := e.status(res[0].ID); st.Jobs[0].State != queue.StateDelivered {
		t.Errorf("state %q after a graceful Stop", st.Jobs[0].State)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	big := `{"x":"` + strings.Repeat("a", 4200) + `"}`
	mid := `{"x":"` + strings.Repeat("a", 4500) + `"}`
	users := []string{"42"}
	cases := []struct {
		name     string
		r        Request
		field    string
		tooLarge bool
	}{
		{"ok", Request{Users: users, Notification: providers.Notification{Body: "x"}}, "", false},
		{"no recipients", Request{Notification: providers.Notification{Body: "x"}}, "users", false},
		{"empty user", Request{Users: []string{"42", ""}}, "users[1]", false},
		{"push type", Request{Users: users, Notification: providers.Notification{PushType: "loud"}}, "push_type", false},
		{"priority", Request{Users: users, Notification: providers.Notification{Priority: "urgent"}}, "priority", false},
		{"when online", Request{Users: users, WhenOnline: "maybe"}, "when_online", false},
		{"badge", Request{Users: users, Notification: providers.Notification{Badge: intp(-1)}}, "badge", false},
		{"data array", Request{Users: users, Notification: providers.Notification{Data: []byte(`[1]`)}}, "data", false},
		{"expiry", Request{Users: users, Expiry: 29 * 24 * time.Hour}, "expiry", false},
		{"send_at", Request{Users: users, SendAt: t0.Add(40 * 24 * time.Hour)}, "send_at", false},
		{"collapse id", Request{Users: users, Notification: providers.Notification{CollapseID: strings.Repeat("c", 65)}}, "collapse_id", false},
		{"device token", Request{Devices: []DeviceTarget{{Platform: "apns", Token: "xyz"}}}, "devices[0].token", false},
		{"device platform", Request{Devices: []DeviceTarget{{Platform: "blackberry", Token: "x"}}}, "devices[0].platform", false},
		{"voip to fcm", Request{Devices: []DeviceTarget{{Platform: "fcm", Token: fcmToken(1)}},
			Notification: providers.Notification{PushType: providers.PushVoIP}}, "devices[0].platform", false},
		{"too large", Request{Users: users, Notification: providers.Notification{Data: []byte(big)}}, "", true},
		{"voip limit is 5120", Request{Users: users, Notification: providers.Notification{PushType: providers.PushVoIP, Data: []byte(mid)}}, "", false},
		{"fcm data too large", Request{Devices: []DeviceTarget{{Platform: "fcm", Token: fcmToken(1)}},
			Notification: providers.Notification{Data: []byte(big)}}, "data", true},
	}
	for _, c := range cases {
		err := e.svc.Validate(&c.r)
		var fe *FieldError
		switch {
		case c.name == "ok" || c.name == "voip limit is 5120":
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		case !errors.As(err, &fe):
			t.Errorf("%s: err = %v, want *FieldError", c.name, err)
		case fe.Field != c.field || fe.TooLarge != c.tooLarge:
			t.Errorf("%s: field %q tooLarge %v (%v); want %q %v", c.name, fe.Field, fe.TooLarge, fe, c.field, c.tooLarge)
		}
	}
	// Push refuses the whole batch and stores nothing.
	_, err := e.svc.Push(context.Background(), []Request{{Users: users}, {Users: users, WhenOnline: "x"}})
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || be.Err.Field != "when_online" {
		t.Fatalf("Push = %v", err)
	}
	if qs, _ := e.q.Stats(); qs.Due+qs.Deferred != 0 {
		t.Errorf("a rejected batch stored jobs: %+v", qs)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	cases := map[string]Options{
		"Workers":       {Workers: -1},
		"SendTimeout":   {SendTimeout: -time.Second},
		"DefaultExpiry": {DefaultExpiry: 2 * time.Hour, MaxExpiry: time.Hour},
		"PauseCap":      {PauseBase: time.Minute, PauseCap: time.Second},
		"FeedbackURL":   {FeedbackURL: "ftp://x"},
	}
	for name, o := range cases {
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
}

func TestNotificationID(t *testing.T) {
	t.Parallel()
	a, b := newNotificationID(t0), newNotificationID(t0.Add(time.Millisecond))
	if len(a) != 28 || a[:2] != "n_" || a >= b || a == newNotificationID(t0) {
		t.Errorf("ids %q %q", a, b)
	}
}
