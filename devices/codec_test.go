package devices

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, d := range []Device{
		{ID: "id", User: "u", Platform: PlatformFCM, Token: "t", Created: now, Updated: now},
		{ID: "6F96", User: "Анна", Platform: PlatformAPNs, Token: apnsToken(1), VoIPToken: apnsToken(2),
			AppID: "Bitrix24", Sandbox: true, Locale: "ru", Timezone: "Europe/Moscow",
			Name: strings.Repeat("n", 300), Created: now.Add(-time.Hour), Updated: now},
		{ID: "old", User: "u", Platform: PlatformFCM, Token: "t", Created: time.Unix(-5, 0), Updated: time.Unix(0, 1)},
	} {
		got, err := decodeRecord(recordKey(d.User, d.ID), encodeRecord(d), "")
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if canon(got) != canon(d) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
		}
	}
}

func TestStaleKeyOrder(t *testing.T) {
	t.Parallel()
	times := []time.Time{time.Unix(-10, 0), time.Unix(0, 0), time.Unix(0, 1), time.Unix(1<<32, 0)}
	for i := 1; i < len(times); i++ {
		a, b := staleKey(times[i-1], "z"), staleKey(times[i], "a")
		if string(a) >= string(b) {
			t.Fatalf("staleKey(%v) does not sort before staleKey(%v)", times[i-1], times[i])
		}
		if !staleKeyTime(b).Equal(times[i]) {
			t.Fatalf("staleKeyTime = %v, want %v", staleKeyTime(b), times[i])
		}
	}
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	t.Parallel()
	d := Device{ID: "id", User: "u", Platform: PlatformFCM, Token: "tok", Created: time.Unix(1, 0), Updated: time.Unix(1, 0)}
	good := encodeRecord(d)
	for name, c := range map[string]struct{ key, val []byte }{
		"no separator":  {[]byte("uid"), good},
		"short":         {recordKey("u", "id"), good[:10]},
		"version":       {recordKey("u", "id"), append([]byte{9}, good[1:]...)},
		"truncated":     {recordKey("u", "id"), good[:len(good)-1]},
		"trailing":      {recordKey("u", "id"), append(good[:len(good):len(good)], 'x')},
		"huge length":   {recordKey("u", "id"), append(good[:18:18], 0xff, 0xff, 0xff, 0xff, 0x0f)},
		"missing field": {recordKey("u", "id"), good[:18]},
	} {
		if _, err := decodeRecord(c.key, c.val, ""); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want errCorrupt", name, err)
		}
	}
}

// FuzzDecodeRecord checks that no stored bytes can crash a reader and that
// whatever decodes re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	now := time.Unix(1700000000, 5)
	f.Add([]byte("u\x00id"), encodeRecord(Device{Platform: PlatformFCM, Token: "t", Created: now, Updated: now}))
	f.Add([]byte("u\x00id"), []byte{1, 0})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		d, err := decodeRecord(key, val, "")
		if err != nil {
			return
		}
		if again := encodeRecord(d); string(again[2:]) != string(val[2:]) || again[1]&flagSandbox != val[1]&flagSandbox {
			t.Fatalf("re-encode differs:\n%x\n%x", again, val)
		}
	})
}

// FuzzValidate checks Validate on arbitrary input: it never panics, it
// always names a field when it fails, and a device it accepts survives
// normalization and the storage codec unchanged.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, user, platformName, token, voip, appID, locale, tz, name string, sandbox bool) {
		d := Device{ID: id, User: user, Platform: platformName, Token: token, VoIPToken: voip,
			AppID: appID, Sandbox: sandbox, Locale: locale, Timezone: tz, Name: name}
		err := Validate(d)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" || ve.Message == "" {
				t.Fatalf("Validate returned %#v", err)
			}
			return
		}
		n := Normalize(d)
		if err := Validate(n); err != nil {
			t.Fatalf("normalized device invalid: %v", err)
		}
		if n.ID == "" {
			n.ID = DeriveID(n.Platform, n.Token)
		}
		n.Created, n.Updated = time.Unix(1, 0), time.Unix(2, 0)
		got, err := decodeRecord(recordKey(n.User, n.ID), encodeRecord(n), "")
		if err != nil || canon(got) != canon(n) {
			t.Fatalf("codec round trip: %+v, %v; want %+v", got, err, n)
		}
	})
}
