package devices

import (
	"errors"
	"strings"
	"testing"
)

func validDevice() Device {
	return Device{
		ID: "6F9619FF-8B86-D011-B42D-00C04FC964FF", User: "42", Platform: PlatformAPNs,
		Token: apnsToken(1), VoIPToken: apnsToken(2), AppID: "Bitrix24",
		Locale: "ru", Timezone: "Europe/Moscow", Name: "iPhone 15",
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	fcm := func(tok string) func(*Device) {
		return func(d *Device) { d.Platform, d.Token, d.VoIPToken = PlatformFCM, tok, "" }
	}
	cases := []struct {
		name  string
		edit  func(*Device)
		field string // "" means valid
	}{
		{"valid apns", func(*Device) {}, ""},
		{"valid fcm", fcm("dGVzdA:APA91b-_x.y"), ""},
		{"upper-case apns hex", func(d *Device) { d.Token = strings.ToUpper(d.Token) }, ""},
		{"apns 200 chars", func(d *Device) { d.Token = strings.Repeat("ab", 100) }, ""},
		{"no id", func(d *Device) { d.ID = "" }, ""},
		{"unicode name", func(d *Device) { d.Name = "Айфон Анны 📱" }, ""},
		{"unknown platform", func(d *Device) { d.Platform = "webos" }, "platform"},
		{"empty platform", func(d *Device) { d.Platform = "" }, "platform"},
		{"platform case", func(d *Device) { d.Platform = "APNS" }, "platform"},
		{"no user", func(d *Device) { d.User = "" }, "user"},
		{"user too long", func(d *Device) { d.User = strings.Repeat("u", MaxUserLen+1) }, "user"},
		{"user with NUL", func(d *Device) { d.User = "4\x002" }, "user"},
		{"user bad utf8", func(d *Device) { d.User = "\xff" }, "user"},
		{"id too long", func(d *Device) { d.ID = strings.Repeat("i", MaxIDLen+1) }, "id"},
		{"id with newline", func(d *Device) { d.ID = "a\nb" }, "id"},
		{"apns token empty", func(d *Device) { d.Token = "" }, "token"},
		{"apns token short", func(d *Device) { d.Token = d.Token[:62] }, "token"},
		{"apns token long", func(d *Device) { d.Token = strings.Repeat("ab", 101) }, "token"},
		{"apns token odd", func(d *Device) { d.Token += "a" }, "token"},
		{"apns token not hex", func(d *Device) { d.Token = "g" + d.Token[1:] }, "token"},
		{"apns token spaces", func(d *Device) { d.Token = d.Token[:60] + " abc" }, "token"},
		{"fcm token empty", fcm(""), "token"},
		{"fcm token too long", fcm(strings.Repeat("x", 4097)), "token"},
		{"fcm token 4096", fcm(strings.Repeat("x", 4096)), ""},
		{"fcm token space", fcm("abc def"), "token"},
		{"fcm token tab", fcm("abc\tdef"), "token"},
		{"fcm token nbsp", fcm("abc\u00a0def"), "token"},
		{"fcm token control", fcm("abc\x01"), "token"},
		{"fcm token bad utf8", fcm("abc\xff"), "token"},
		{"voip bad", func(d *Device) { d.VoIPToken = "xyz" }, "voip_token"},
		{"voip same as token", func(d *Device) { d.VoIPToken = strings.ToUpper(d.Token) }, "voip_token"},
		{"voip on fcm", func(d *Device) { fcm("tok")(d); d.VoIPToken = apnsToken(3) }, "voip_token"},
		{"app_id too long", func(d *Device) { d.AppID = strings.Repeat("a", MaxAppIDLen+1) }, "app_id"},
		{"app_id control", func(d *Device) { d.AppID = "a\x7f" }, "app_id"},
		{"locale too long", func(d *Device) { d.Locale = strings.Repeat("l", MaxLocaleLen+1) }, "locale"},
		{"timezone too long", func(d *Device) { d.Timezone = strings.Repeat("t", MaxTimezoneLen+1) }, "timezone"},
		{"name too long", func(d *Device) { d.Name = strings.Repeat("n", MaxNameLen+1) }, "name"},
		{"name control", func(d *Device) { d.Name = "a\rb" }, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := validDevice()
			tc.edit(&d)
			err := Validate(d)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: got %v, want *ValidationError for %q", err, tc.field)
			}
			if ve.Field != tc.field {
				t.Fatalf("Validate: field %q (%v), want %q", ve.Field, err, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("Error() = %q, want prefix %q", err.Error(), tc.field+": ")
			}
		})
	}
}

func TestDeriveIDStable(t *testing.T) {
	t.Parallel()
	// A golden value: ids are persisted, so the derivation must never change.
	const want = "cc3e28fa3df7278d17c3bfb5abb08b43" // sha256("apns\x00" + token)[:16], computed independently
	got := DeriveID(PlatformAPNs, apnsToken(1))
	if got != want {
		t.Fatalf("DeriveID = %q, want %q", got, want)
	}
	if DeriveID(PlatformAPNs, strings.ToUpper(apnsToken(1))) != got {
		t.Fatal("DeriveID differs for upper-case spelling of the same APNs token")
	}
	if DeriveID(PlatformFCM, apnsToken(1)) == got {
		t.Fatal("DeriveID ignores the platform")
	}
	if DeriveID(PlatformAPNs, apnsToken(2)) == got {
		t.Fatal("DeriveID ignores the token")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := redact(apnsToken(1)); got != "abababab…" {
		t.Fatalf("redact = %q", got)
	}
	if got := redact("short"); got != "short" {
		t.Fatalf("redact = %q", got)
	}
}

func TestValidateHMS(t *testing.T) {
	d := Device{User: "1", Platform: PlatformHMS, Token: "IQAAAACy0kYkAADB5pXQ"}
	if err := Validate(d); err != nil {
		t.Fatalf("hms token: %v", err)
	}
	d.Token = "has space"
	var ve *ValidationError
	if err := Validate(d); !errors.As(err, &ve) || ve.Field != "token" {
		t.Fatalf("bad hms token: %v", err)
	}
}
