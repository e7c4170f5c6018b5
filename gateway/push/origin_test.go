package push

import (
	"sync"
	"testing"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

// TestOriginReachesInvalidTokenHook: a direct target's Origin is stored
// with its job (it survives the queue's encoding) and comes back in the
// report OnInvalidToken receives when the provider calls the token dead.
func TestOriginReachesInvalidTokenHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []Report
	e := newEnv(t, envConfig{fakeClock: true, push: func(o *Options) {
		o.OnInvalidToken = func(r Report) { mu.Lock(); got = append(got, r); mu.Unlock() }
	}})
	dead, live := apnsToken(7), apnsToken(8)
	e.prod.Script(dead, fake.Behavior{Status: 410, Reason: fake.APNsUnregistered})
	res := e.push(Request{Devices: []DeviceTarget{
		{Platform: "apns", AppID: apnsApp, Token: dead, Origin: "portal.example.com"},
		{Platform: "apns", AppID: apnsApp, Token: live, Origin: "portal.example.com"},
	}, Notification: providers.Notification{Body: "x"}})
	e.dispatch()
	if st := e.status(res[0].ID); st.States["delivered"] != 1 {
		t.Errorf("job states %v, want one delivered", st.States)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("hook got %d reports, want 1: %+v", len(got), got)
	}
	if r := got[0]; r.Origin != "portal.example.com" || r.Token != dead || r.Reason != "apns: Unregistered" {
		t.Errorf("report %+v", r)
	}
}
