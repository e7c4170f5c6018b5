package kvregistry

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

func TestRegisterGetListRemove(t *testing.T) {
	t.Parallel()
	r, c := newRegistry(t)
	in := devices.Device{ID: "phone", User: "anna", Platform: devices.PlatformAPNs, Token: strings.ToUpper(apnsToken(1)),
		VoIPToken: apnsToken(2), AppID: "com.example", Sandbox: true, Locale: "de-DE", Timezone: "Europe/Berlin", Name: "Anna's phone",
		Created: time.Unix(1, 0)} // ignored
	reg := register(t, r, in)
	want := in
	want.Token = apnsToken(1) // normalized
	want.Created, want.Updated = c.now.UTC(), c.now.UTC()
	if !reg.Created || reg.MovedFrom != "" || reg.Replaced != "" || len(reg.Evicted) != 0 || reg.Device != want {
		t.Fatalf("Registration = %+v\nwant device %+v", reg, want)
	}
	got, err := r.Get(bg, "phone")
	if err != nil || got != want {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, err, want)
	}

	// Re-registration keeps Created, moves Updated.
	created := c.now
	c.Advance(time.Hour)
	reg = register(t, r, in)
	if reg.Created || !reg.Device.Created.Equal(created) || !reg.Device.Updated.Equal(c.now) {
		t.Fatalf("re-Registration = %+v", reg)
	}

	// A second device of anna without an id gets the derived one.
	fcm := register(t, r, devices.Device{User: "anna", Platform: devices.PlatformFCM, Token: "fcm:tok/1"})
	if fcm.Device.ID != devices.DeriveID(devices.PlatformFCM, "fcm:tok/1") {
		t.Fatalf("derived id = %q", fcm.Device.ID)
	}
	register(t, r, devices.Device{ID: "tablet", User: "boris", Platform: devices.PlatformHMS, Token: "hms-1"})

	list, err := r.ListByUser(bg, "anna")
	wantIDs := []string{fcm.Device.ID, "phone"}
	slices.Sort(wantIDs)
	if err != nil || !slices.Equal(ids(list), wantIDs) {
		t.Fatalf("ListByUser(anna) = %v, %v; want %v", ids(list), err, wantIDs)
	}
	m, err := r.ListByUsers(bg, []string{"boris", "anna", "nobody", "anna", ""})
	if err != nil || len(m) != 2 || !slices.Equal(ids(m["anna"]), wantIDs) || !slices.Equal(ids(m["boris"]), []string{"tablet"}) {
		t.Fatalf("ListByUsers = %v, %v", m, err)
	}
	if none, err := r.ListByUser(bg, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("ListByUser(nobody) = %v, %v", none, err)
	}
	if d, err := r.FindByToken(bg, devices.PlatformAPNs, strings.ToUpper(apnsToken(2))); err != nil || d.ID != "phone" {
		t.Fatalf("FindByToken(voip) = %+v, %v", d, err)
	}

	// Remove returns the device and frees its tokens and index entry.
	d, err := r.Remove(bg, "phone")
	if err != nil || d.ID != "phone" || d.VoIPToken != apnsToken(2) {
		t.Fatalf("Remove = %+v, %v", d, err)
	}
	if _, err := r.Get(bg, "phone"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("Get after Remove = %v", err)
	}
	if _, err := r.Remove(bg, "phone"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("second Remove = %v", err)
	}
	for _, tok := range []string{apnsToken(1), apnsToken(2)} {
		if _, _, ok, _ := r.getToken(bg, devices.PlatformAPNs, tok); ok {
			t.Fatalf("token key %s kept after Remove", tok[60:])
		}
	}
	if list, _ := r.ListByUser(bg, "anna"); !slices.Equal(ids(list), []string{fcm.Device.ID}) {
		t.Fatalf("ListByUser after Remove = %v", ids(list))
	}
	doc, _, _, _ := r.getUser(bg, "anna")
	if len(doc.Devices) != 1 {
		t.Fatalf("index of anna = %+v, want one entry", doc)
	}
}

func TestRemoveToken(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	register(t, r, devices.Device{ID: "a", User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2)})

	if _, err := r.RemoveToken(bg, "webpush", "x"); !isField(err, "platform") {
		t.Fatalf("RemoveToken(unknown platform) = %v", err)
	}
	if _, err := r.RemoveToken(bg, devices.PlatformAPNs, apnsToken(3)); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("RemoveToken(unknown token) = %v", err)
	}
	// A dead VoIP token clears only that token.
	d, err := r.RemoveToken(bg, devices.PlatformAPNs, strings.ToUpper(apnsToken(2)))
	if err != nil || d.ID != "a" || d.VoIPToken != apnsToken(2) {
		t.Fatalf("RemoveToken(voip) = %+v, %v", d, err)
	}
	if got, err := r.Get(bg, "a"); err != nil || got.VoIPToken != "" || got.Token != apnsToken(1) {
		t.Fatalf("Get after VoIP removal = %+v, %v", got, err)
	}
	if _, err := r.FindByToken(bg, devices.PlatformAPNs, apnsToken(2)); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("FindByToken(removed voip) = %v", err)
	}
	// A dead main token deletes the device.
	if d, err := r.RemoveToken(bg, devices.PlatformAPNs, apnsToken(1)); err != nil || d.ID != "a" {
		t.Fatalf("RemoveToken(token) = %+v, %v", d, err)
	}
	if _, err := r.Get(bg, "a"); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("Get after token removal = %v", err)
	}
	if list, _ := r.ListByUser(bg, "anna"); len(list) != 0 {
		t.Fatalf("ListByUser after token removal = %v", ids(list))
	}
	if _, err := r.RemoveToken(bg, devices.PlatformAPNs, apnsToken(1)); !errors.Is(err, devices.ErrNotFound) {
		t.Fatalf("second RemoveToken = %v", err)
	}
}

func TestValidationNamesField(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	ok := devices.Device{User: "anna", Platform: devices.PlatformAPNs, Token: apnsToken(1)}
	for _, tc := range []struct {
		field string
		edit  func(*devices.Device)
	}{
		{"platform", func(d *devices.Device) { d.Platform = "webpush" }},
		{"user", func(d *devices.Device) { d.User = "" }},
		{"id", func(d *devices.Device) { d.ID = "a\x00b" }},
		{"token", func(d *devices.Device) { d.Token = "xyz" }},
		{"voip_token", func(d *devices.Device) { d.VoIPToken = strings.ToUpper(d.Token) }},
		{"name", func(d *devices.Device) { d.Name = strings.Repeat("n", devices.MaxNameLen+1) }},
	} {
		d := ok
		tc.edit(&d)
		if _, err := r.Register(bg, d); !isField(err, tc.field) {
			t.Errorf("Register with bad %s = %v", tc.field, err)
		}
	}
	if n := countKeys(t, r); n != 0 {
		t.Fatalf("invalid registrations stored %d keys", n)
	}
}

func isField(err error, field string) bool {
	var ve *devices.ValidationError
	return errors.As(err, &ve) && ve.Field == field
}

// countKeys counts live keys in all three buckets.
func countKeys(t *testing.T, r *Registry) int {
	t.Helper()
	n := 0
	for _, kv := range []jetstream.KeyValue{r.devices, r.tokens, r.users} {
		l, err := kv.ListKeys(bg)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		for range l.Keys() {
			n++
		}
	}
	return n
}
