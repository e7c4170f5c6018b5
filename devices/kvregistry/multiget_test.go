package kvregistry

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/pushpull/pushpull/devices"
)

// TestListByUsersBatchedMatchesOneByOne: the batched read and the
// per-user read (used when the buckets have no direct gets) list the same
// devices for a registry with moved tokens, a VoIP token held by another
// device, several devices per user and users with none.
func TestListByUsersBatchedMatchesOneByOne(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	js := connect(t, s)
	r := openRegistry(t, js, Options{})
	register(t, r, devices.Device{ID: "a1", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2)})
	register(t, r, devices.Device{ID: "a2", User: "anna", Platform: devices.PlatformFCM, Token: "fcm-a2"})
	register(t, r, devices.Device{ID: "b1", User: "boris", Platform: devices.PlatformAPNs, Token: apnsToken(3), VoIPToken: apnsToken(2)}) // takes a1's VoIP token
	register(t, r, devices.Device{ID: "c1", User: "clara", Platform: devices.PlatformFCM, Token: "fcm-c1"})
	register(t, r, devices.Device{ID: "d1", User: "dora", Platform: devices.PlatformFCM, Token: "fcm-c1"}) // takes c1's token: clara has none
	users := []string{"anna", "boris", "clara", "dora", "nobody", "anna"}
	batched, err := r.ListByUsers(bg, users)
	if err != nil {
		t.Fatal(err)
	}
	if len(batched["anna"]) != 2 || batched["anna"][0].VoIPToken != "" || len(batched["boris"]) != 1 || len(batched["clara"]) != 0 || len(batched["dora"]) != 1 {
		t.Fatalf("batched list %+v", batched)
	}
	// Without direct gets on the buckets the registry reads user by user.
	for _, b := range []string{DefaultDevicesBucket, DefaultTokensBucket, DefaultUsersBucket} {
		st, err := js.Stream(bg, "KV_"+b)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(bg, cfg); err != nil {
			t.Fatal(err)
		}
	}
	slow := openRegistry(t, js, Options{})
	if _, err := slow.multiGet(bg, DefaultUsersBucket, []string{userKey("anna")}); err != errNoBatch {
		t.Fatalf("multiGet without direct gets: %v, want errNoBatch", err)
	}
	oneByOne, err := slow.ListByUsers(bg, users)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(batched, oneByOne) {
		t.Fatalf("batched %+v\none by one %+v", batched, oneByOne)
	}
}

// TestListByUsersManyUsers crosses the 1000-key request bound.
func TestListByUsersManyUsers(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	const n = multiGetChunk + 150
	users := make([]string, n)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
		register(t, r, devices.Device{ID: "d" + strconv.Itoa(i), User: users[i], Platform: devices.PlatformFCM, Token: "t" + strconv.Itoa(i)})
	}
	m, err := r.ListByUsers(bg, users)
	if err != nil || len(m) != n {
		t.Fatalf("listed %d of %d users: %v", len(m), n, err)
	}
	for i, u := range users {
		if ds := m[u]; len(ds) != 1 || ds[0].Token != "t"+strconv.Itoa(i) {
			t.Fatalf("user %s: %+v", u, ds)
		}
	}
}
