package kvregistry

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/devices"
)

// Two registries on separate connections are two pushpull nodes.
func TestConcurrentClaimsOneOwner(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	nodes := []*Registry{openRegistry(t, connect(t, s), Options{}), openRegistry(t, connect(t, s), Options{})}
	const rounds, perNode = 25, 2
	for round := range rounds {
		tok := apnsToken(1000 + round)
		var wg sync.WaitGroup
		var users []string
		for n, r := range nodes {
			for g := range perNode {
				user := "u" + strconv.Itoa(n) + "-" + strconv.Itoa(g)
				users = append(users, user)
				own := apnsToken(round*100 + n*10 + g)
				wg.Go(func() {
					// Odd goroutines claim the token as VoIP token, even ones as main token.
					d := devices.Device{ID: strconv.Itoa(round) + "-" + user, User: user, Platform: devices.PlatformAPNs, Token: tok}
					if g%2 == 1 {
						d.Token, d.VoIPToken = own, tok
					}
					if _, err := r.Register(bg, d); err != nil {
						t.Errorf("Register: %v", err)
					}
				})
			}
		}
		wg.Wait()
		// Register itself converged the records (checked before any read,
		// since reads repair).
		stored := 0
		for _, u := range users {
			rec, _, ok, _ := nodes[0].getRecord(bg, strconv.Itoa(round)+"-"+u)
			if ok && (rec.Token == tok || rec.VoIPToken == tok) {
				stored++
			}
		}
		if stored != 1 {
			t.Fatalf("round %d: %d records hold the token, want 1", round, stored)
		}
		for _, r := range nodes {
			m, err := r.ListByUsers(bg, users)
			if err != nil {
				t.Fatal(err)
			}
			var holders []string
			for _, ds := range m {
				for _, d := range ds {
					if d.Token == tok || d.VoIPToken == tok {
						holders = append(holders, d.ID)
					}
				}
			}
			if len(holders) != 1 {
				t.Fatalf("round %d: token listed for %v, want exactly one device", round, holders)
			}
			if d, err := r.FindByToken(bg, devices.PlatformAPNs, tok); err != nil || d.ID != holders[0] {
				t.Fatalf("round %d: FindByToken = %+v, %v; listed %v", round, d, err, holders)
			}
		}
	}
}

// Concurrent registrations of one device id with different tokens leave
// the device with one of them and no other token key naming it.
func TestConcurrentSameDevice(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	nodes := []*Registry{openRegistry(t, connect(t, s), Options{}), openRegistry(t, connect(t, s), Options{})}
	for round := range 10 {
		id := "dev-" + strconv.Itoa(round)
		var wg sync.WaitGroup
		for n, r := range nodes {
			for g := range 2 {
				tok := id + "-tok-" + strconv.Itoa(n*2+g)
				wg.Go(func() {
					if _, err := r.Register(bg, devices.Device{ID: id, User: "anna", Platform: devices.PlatformFCM, Token: tok}); err != nil {
						t.Errorf("Register: %v", err)
					}
				})
			}
		}
		wg.Wait()
		d, err := nodes[1].Get(bg, id)
		if err != nil {
			t.Fatalf("round %d: Get = %v", round, err)
		}
		for i := range 4 {
			tok := id + "-tok-" + strconv.Itoa(i)
			te, _, ok, _ := nodes[0].getToken(bg, devices.PlatformFCM, tok)
			if tok == d.Token && (!ok || te.ID != id) {
				t.Fatalf("round %d: device's token %s not owned", round, tok)
			}
			if tok != d.Token {
				if _, err := nodes[0].FindByToken(bg, devices.PlatformFCM, tok); !errors.Is(err, devices.ErrNotFound) {
					t.Fatalf("round %d: stale token %s found: %v", round, tok, err)
				}
			}
		}
	}
}

// Everything survives a restart of the server on the same store.
func TestServerRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	r := openRegistry(t, connect(t, s), Options{})
	register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2)})
	register(t, r, devices.Device{ID: "b", User: "boris", Platform: devices.PlatformFCM, Token: "fcm-b"})
	want, _ := r.ListByUsers(bg, []string{"anna", "boris"})
	s.Shutdown()
	s.WaitForShutdown()

	s2 := startServer(t, dir)
	r2 := openRegistry(t, connect(t, s2), Options{})
	got, err := r2.ListByUsers(bg, []string{"anna", "boris"})
	if err != nil || len(got) != 2 || got["anna"][0] != want["anna"][0] || got["boris"][0] != want["boris"][0] {
		t.Fatalf("after restart ListByUsers = %+v, %v\nwant %+v", got, err, want)
	}
	if d, err := r2.FindByToken(bg, devices.PlatformAPNs, apnsToken(2)); err != nil || d.ID != "a" {
		t.Fatalf("after restart FindByToken = %+v, %v", d, err)
	}
	// And the token rule still holds against the restored data.
	reg := register(t, r2, devices.Device{ID: "c", User: "carl", Platform: devices.PlatformFCM, Token: "fcm-b"})
	if reg.MovedFrom != "boris" || len(reg.Evicted) != 1 {
		t.Fatalf("Registration after restart = %+v", reg)
	}
}

// A crash between the steps of Register leaves leftovers that readers
// skip and repair. The leftovers are written directly to the buckets.
func TestCrashLeftoversSkippedAndRepaired(t *testing.T) {
	t.Parallel()
	r, c := newRegistry(t)
	register(t, r, devices.Device{ID: "old", User: "anna", Platform: devices.PlatformFCM, Token: "tok"})
	// Crash after step 2 of a registration of "new" for boris: boris's
	// index entry and the token key name "new", no record was written.
	claim := newClaim()
	if err := r.addToUser(bg, "boris", "new", claim, c.now); err != nil {
		t.Fatal(err)
	}
	if _, err := r.claimToken(bg, devices.PlatformFCM, "tok", "new", claim); err != nil {
		t.Fatal(err)
	}
	// The old holder must not receive pushes any more, nor "new" yet.
	m, err := r.ListByUsers(bg, []string{"anna", "boris"})
	if err != nil || len(m) != 0 {
		t.Fatalf("ListByUsers = %v, %v; want nobody", m, err)
	}
	if _, err := r.FindByToken(bg, devices.PlatformFCM, "tok"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("FindByToken = %v", err)
	}
	// The read repaired the stale record of "old" (and its index entry).
	if _, _, ok, _ := r.getRecord(bg, "old"); ok {
		t.Fatal("stale record of old kept")
	}
	// boris's entry is younger than RepairAfter: kept, it may be in flight.
	if doc, _, _, _ := r.getUser(bg, "boris"); len(doc.Devices) != 1 {
		t.Fatalf("young index entry repaired too early: %+v", doc)
	}
	c.Advance(2 * DefaultRepairAfter)
	if _, err := r.ListByUser(bg, "boris"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.getUser(bg, "boris"); ok {
		t.Fatal("old stale index entry not repaired")
	}
	// The app retries and the registration completes.
	reg := register(t, r, devices.Device{ID: "new", User: "boris", Platform: devices.PlatformFCM, Token: "tok"})
	if !reg.Created || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if list, _ := r.ListByUser(bg, "boris"); len(list) != 1 {
		t.Fatalf("ListByUser(boris) = %v", ids(list))
	}
}

// A record written by a registration that lost its token race after its
// clean-up check is never listed next to the winner.
func TestStaleRecordNeverListedTwice(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	register(t, r, devices.Device{ID: "winner", User: "boris", Platform: devices.PlatformFCM, Token: "tok"})
	// Forge the loser's state: full record and index entry, token key not its own.
	claim := newClaim()
	rec := record{Device: devices.Device{ID: "loser", User: "anna", Platform: devices.PlatformFCM, Token: "tok",
		Created: time.Now().UTC(), Updated: time.Now().UTC()}, Claim: claim}
	val, _ := json.Marshal(rec)
	if _, err := r.devices.Create(bg, idKey("loser"), val); err != nil {
		t.Fatal(err)
	}
	if err := r.addToUser(bg, "anna", "loser", claim, time.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := r.ListByUsers(bg, []string{"anna", "boris"})
	if err != nil || len(m) != 1 || len(m["boris"]) != 1 {
		t.Fatalf("ListByUsers = %v, %v; want only boris's device", m, err)
	}
	if _, err := r.Get(bg, "loser"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("Get(loser) = %v", err)
	}
}

// Releasing what a replaced record held never undoes a newer registration
// of the same device that is still in flight (it claimed afresh, with
// another nonce, but has not written its record yet).
func TestReleaseKeepsNewerClaim(t *testing.T) {
	t.Parallel()
	r, c := newRegistry(t)
	register(t, r, devices.Device{ID: "d", User: "anna", Platform: devices.PlatformFCM, Token: "t0"})
	old, _, _, _ := r.getRecord(bg, "d")
	inflight := newClaim()
	if _, err := r.claimToken(bg, devices.PlatformFCM, "t0", "d", inflight); err != nil {
		t.Fatal(err)
	}
	if err := r.addToUser(bg, "anna", "d", inflight, c.now); err != nil {
		t.Fatal(err)
	}
	if err := r.releaseToken(bg, devices.PlatformFCM, "t0", "d", old.Claim); err != nil {
		t.Fatal(err)
	}
	if err := r.removeFromUser(bg, "anna", "d", old.Claim); err != nil {
		t.Fatal(err)
	}
	if te, _, ok, _ := r.getToken(bg, devices.PlatformFCM, "t0"); !ok || te.Claim != inflight {
		t.Fatalf("token key = %+v, %v; the newer claim was released", te, ok)
	}
	if doc, _, _, _ := r.getUser(bg, "anna"); len(doc.Devices) != 1 || doc.Devices[0].Claim != inflight {
		t.Fatalf("index = %+v; the newer entry was removed", doc)
	}
	// With the matching claim, both go.
	if err := r.releaseToken(bg, devices.PlatformFCM, "t0", "d", inflight); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.getToken(bg, devices.PlatformFCM, "t0"); ok {
		t.Fatal("token key kept though its claim matched")
	}
}
