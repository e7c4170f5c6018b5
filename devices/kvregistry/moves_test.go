package kvregistry

import (
	"errors"
	"slices"
	"testing"

	"github.com/pushpull/pushpull/devices"
)

func TestTokenMovesToAnotherUser(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	tok := apnsToken(9)
	register(t, r, devices.Device{ID: "phone-a", User: "anna", Platform: devices.PlatformAPNs, Token: tok, VoIPToken: apnsToken(10)})
	reg := register(t, r, devices.Device{ID: "phone-b", User: "boris", Platform: devices.PlatformAPNs, Token: tok})
	if reg.MovedFrom != "anna" || !slices.Equal(reg.Evicted, []string{"phone-a"}) || !reg.Created {
		t.Fatalf("Registration = %+v", reg)
	}
	if got, _ := r.ListByUser(bg, "anna"); len(got) != 0 {
		t.Fatalf("old owner still lists %v", ids(got))
	}
	if _, err := r.Get(bg, "phone-a"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("Get(old device) = %v", err)
	}
	if d, err := r.FindByToken(bg, devices.PlatformAPNs, tok); err != nil || d.ID != "phone-b" || d.User != "boris" {
		t.Fatalf("FindByToken = %+v, %v", d, err)
	}
	// The evicted device's VoIP token and index entry went with it.
	if _, _, ok, _ := r.getToken(bg, devices.PlatformAPNs, apnsToken(10)); ok {
		t.Fatal("evicted device's VoIP token key kept")
	}
	if _, _, ok, _ := r.getUser(bg, "anna"); ok {
		t.Fatal("evicted device's index entry kept")
	}
}

func TestDeviceIDMovesToAnotherUser(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	first := register(t, r, devices.Device{User: "anna", Platform: devices.PlatformFCM, Token: "tok"})
	reg := register(t, r, devices.Device{User: "boris", Platform: devices.PlatformFCM, Token: "tok"})
	if reg.MovedFrom != "anna" || reg.Created || reg.Device.ID != first.Device.ID || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if got, _ := r.ListByUser(bg, "anna"); len(got) != 0 {
		t.Fatalf("old owner still lists %v", ids(got))
	}
	if _, _, ok, _ := r.getUser(bg, "anna"); ok {
		t.Fatal("old owner's index entry kept")
	}
	if got, _ := r.ListByUser(bg, "boris"); len(got) != 1 {
		t.Fatalf("new owner lists %v", ids(got))
	}
}

func TestVoIPTokenMoves(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	voip := apnsToken(100)
	register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: voip})
	reg := register(t, r, devices.Device{ID: "b", User: "boris", Platform: devices.PlatformAPNs, Token: apnsToken(2), VoIPToken: voip})
	if reg.MovedFrom != "anna" || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	a, err := r.Get(bg, "a")
	if err != nil || a.VoIPToken != "" || a.Token != apnsToken(1) {
		t.Fatalf("Get(a) = %+v, %v; want token kept, VoIP token cleared", a, err)
	}
	if rec, _, _, _ := r.getRecord(bg, "a"); rec.VoIPToken != "" {
		t.Fatalf("stored record of a still has the VoIP token: %+v", rec)
	}
	if d, _ := r.FindByToken(bg, devices.PlatformAPNs, voip); d.ID != "b" {
		t.Fatalf("FindByToken(voip) = %+v", d)
	}
	// A VoIP token registered as another device's main token moves too.
	reg = register(t, r, devices.Device{ID: "c", User: "carl", Platform: devices.PlatformAPNs, Token: voip})
	if reg.MovedFrom != "boris" || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if b, _ := r.Get(bg, "b"); b.VoIPToken != "" || b.Token != apnsToken(2) {
		t.Fatalf("b = %+v", b)
	}
}

func TestReRegisterReplacesToken(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2)})
	reg := register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(3)})
	if reg.Replaced != apnsToken(1) || reg.MovedFrom != "" || reg.Created {
		t.Fatalf("Registration = %+v", reg)
	}
	for _, old := range []string{apnsToken(1), apnsToken(2)} {
		if _, _, ok, _ := r.getToken(bg, devices.PlatformAPNs, old); ok {
			t.Fatalf("old token key %s kept", old[60:])
		}
	}
	// The released token is free: taking it must not evict device a.
	reg = register(t, r, devices.Device{ID: "b", User: "boris", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	if reg.MovedFrom != "" || len(reg.Evicted) != 0 {
		t.Fatalf("Registration = %+v", reg)
	}
	if _, err := r.Get(bg, "a"); err != nil {
		t.Fatalf("device a lost: %v", err)
	}
	// Switching platform re-keys the token index.
	register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformFCM, Token: "fcm-a"})
	if _, err := r.FindByToken(bg, devices.PlatformAPNs, apnsToken(3)); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("APNs token kept after switch to FCM: %v", err)
	}
	if d, _ := r.FindByToken(bg, devices.PlatformFCM, "fcm-a"); d.ID != "a" {
		t.Fatalf("FindByToken(fcm) = %+v", d)
	}
}
