package devices

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Tests of the one-owner-per-token rule: a token, VoIP token or device id
// registered again moves, and never stays with its previous owner.

func TestTokenMovesToAnotherUser(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	tok := apnsToken(9)
	register(t, r, Device{ID: "phone-a", User: "anna", Platform: PlatformAPNs, Token: tok})
	// The same phone, reinstalled and logged in as another user, new device id.
	reg := register(t, r, Device{ID: "phone-b", User: "boris", Platform: PlatformAPNs, Token: tok})
	if reg.MovedFrom != "anna" || !slices.Equal(reg.Evicted, []string{"phone-a"}) || !reg.Created {
		t.Fatalf("Registration = %+v", reg)
	}
	if got, _ := r.ListByUser(bg, "anna"); len(got) != 0 {
		t.Fatalf("old owner still lists %v", ids(got))
	}
	if _, err := r.Get(bg, "phone-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(old device) = %v, want ErrNotFound", err)
	}
	d, err := r.FindByToken(bg, PlatformAPNs, tok)
	if err != nil || d.User != "boris" || d.ID != "phone-b" {
		t.Fatalf("FindByToken = %+v, %v", d, err)
	}
	if n, _ := r.Count(bg); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
}

func TestDeviceIDMovesToAnotherUser(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	// Without a device id both registrations derive the same id.
	first := register(t, r, Device{User: "anna", Platform: PlatformFCM, Token: "tok"})
	reg := register(t, r, Device{User: "boris", Platform: PlatformFCM, Token: "tok"})
	if reg.MovedFrom != "anna" || reg.Created || reg.Device.ID != first.Device.ID || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if got, _ := r.ListByUser(bg, "anna"); len(got) != 0 {
		t.Fatalf("old owner still lists %v", ids(got))
	}
	if got, _ := r.ListByUser(bg, "boris"); len(got) != 1 {
		t.Fatalf("new owner lists %v", ids(got))
	}
	if d, _ := r.Get(bg, first.Device.ID); d.User != "boris" {
		t.Fatalf("Get = %+v", d)
	}
}

func TestVoIPTokenMoves(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	voip := apnsToken(100)
	register(t, r, Device{ID: "a", User: "anna", Platform: PlatformAPNs, Token: apnsToken(1), VoIPToken: voip})
	reg := register(t, r, Device{ID: "b", User: "boris", Platform: PlatformAPNs, Token: apnsToken(2), VoIPToken: voip})
	if reg.MovedFrom != "anna" || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	a, err := r.Get(bg, "a")
	if err != nil {
		t.Fatalf("device losing only its VoIP token was removed: %v", err)
	}
	if a.VoIPToken != "" || a.Token != apnsToken(1) {
		t.Fatalf("old device = %+v, want its token kept and VoIP token cleared", a)
	}
	if d, _ := r.FindByToken(bg, PlatformAPNs, voip); d.ID != "b" || d.User != "boris" {
		t.Fatalf("FindByToken(voip) = %+v", d)
	}
	if d, _ := r.FindByToken(bg, PlatformAPNs, apnsToken(1)); d.ID != "a" {
		t.Fatalf("FindByToken(a's token) = %+v", d)
	}

	// A VoIP token registered as another device's main token moves as well.
	reg = register(t, r, Device{ID: "c", User: "carl", Platform: PlatformAPNs, Token: voip})
	if reg.MovedFrom != "boris" {
		t.Fatalf("Registration = %+v", reg)
	}
	if b, _ := r.Get(bg, "b"); b.VoIPToken != "" || b.Token != apnsToken(2) {
		t.Fatalf("b = %+v", b)
	}
	if d, _ := r.FindByToken(bg, PlatformAPNs, voip); d.ID != "c" {
		t.Fatalf("FindByToken(voip) = %+v", d)
	}
}

func TestReRegisterReplacesToken(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	register(t, r, Device{ID: "a", User: "anna", Platform: PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2)})
	reg := register(t, r, Device{ID: "a", User: "anna", Platform: PlatformAPNs, Token: apnsToken(3)})
	if reg.Replaced != apnsToken(1) || reg.MovedFrom != "" || reg.Created {
		t.Fatalf("Registration = %+v", reg)
	}
	for _, old := range []string{apnsToken(1), apnsToken(2)} {
		if _, err := r.FindByToken(bg, PlatformAPNs, old); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old token %s still indexed: %v", old[60:], err)
		}
	}
	if d, _ := r.FindByToken(bg, PlatformAPNs, apnsToken(3)); d.ID != "a" {
		t.Fatalf("FindByToken(new) = %+v", d)
	}
	// The released token is free: taking it must not evict device a.
	reg = register(t, r, Device{ID: "b", User: "boris", Platform: PlatformAPNs, Token: apnsToken(1)})
	if reg.MovedFrom != "" || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if _, err := r.Get(bg, "a"); err != nil {
		t.Fatalf("device a lost: %v", err)
	}

	// Switching platform re-keys the token index.
	register(t, r, Device{ID: "a", User: "anna", Platform: PlatformFCM, Token: "fcm-a"})
	if _, err := r.FindByToken(bg, PlatformAPNs, apnsToken(3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("APNs token kept after switch to FCM: %v", err)
	}
	if d, _ := r.FindByToken(bg, PlatformFCM, "fcm-a"); d.ID != "a" {
		t.Fatalf("FindByToken(fcm) = %+v", d)
	}
}

func TestConcurrentTokenClaims(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	const users = 8
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			for j := range 20 {
				d := Device{ID: "dev" + strconv.Itoa(i), User: "u" + strconv.Itoa(i), Platform: PlatformFCM, Token: "shared"}
				if j%2 == 1 {
					d.Token = "own" + strconv.Itoa(i)
				}
				if _, err := r.Register(bg, d); err != nil {
					t.Errorf("Register: %v", err)
				}
				if _, err := r.ListByUsers(bg, []string{"u0", "u1", "u2"}); err != nil {
					t.Errorf("ListByUsers: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// Every goroutine ends on its own token; "shared" has at most one holder.
	m, _ := r.ListByUsers(bg, []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"})
	holders := 0
	for _, l := range m {
		for _, d := range l {
			if d.Token == "shared" {
				holders++
			}
		}
	}
	if holders > 1 {
		t.Fatalf("%d devices hold the same token", holders)
	}
}
