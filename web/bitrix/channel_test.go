package bitrix

import (
	"errors"
	"strings"
	"testing"
)

const testKey = "test-signature-key"

func newTestSigner(t testing.TB, key, algo string) *Signer {
	t.Helper()
	s, err := NewSigner(key, algo)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignKnownVectors(t *testing.T) {
	t.Parallel()
	// RFC 2104-style published vectors for HMAC-SHA1 and HMAC-SHA256.
	msg := "The quick brown fox jumps over the lazy dog"
	if got := newTestSigner(t, "key", "sha1").Sign(msg); got != "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9" {
		t.Fatalf("sha1 = %s", got)
	}
	if got := newTestSigner(t, "key", "sha256").Sign(msg); got != "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Fatalf("sha256 = %s", got)
	}
	if _, err := NewSigner("k", "md5"); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("md5: %v", err)
	}
}

func TestParseChannelList(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t, testKey, "sha1")
	priv, pub, shared := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	pair := s.SignChannel(priv + ":" + pub)
	sharedSigned := s.SignChannel(shared)
	public := s.SignPublicChannel(pub)

	got, err := s.ParseChannelList(pair+"/"+sharedSigned+"/"+public, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{{ID: priv, PublicID: pub}, {ID: shared}, {PublicID: pub, Public: true}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if hc := got[0].HubChannels(nil); len(hc) != 2 || hc[0] != "bx:"+priv || hc[1] != "bxp:"+pub {
		t.Errorf("hub channels of priv:pub = %v", hc)
	}

	bad := []struct{ name, list string }{
		{"empty", ""},
		{"unsigned with a key", shared},
		{"one bad element rejects the list", pair + "/" + shared + "." + strings.Repeat("0", 40)},
		{"priv:pub signed over priv only", priv + ":" + pub + "." + s.Sign(priv)},
		{"short signature", shared + "." + s.Sign(shared)[:39]},
		{"uppercase id", strings.ToUpper(shared) + "." + s.Sign(shared)},
		{"31 hex", shared[:31] + "." + s.Sign(shared[:31])},
		{"trailing slash", sharedSigned + "/"},
		{"public signature on a pair", priv + ":" + pub + "." + s.Sign("public:"+pub)},
	}
	for _, tc := range bad {
		if _, err := s.ParseChannelList(tc.list, 100); !errors.Is(err, ErrWrongChannel) {
			t.Errorf("%s: err = %v, want ErrWrongChannel", tc.name, err)
		}
	}
	if _, err := s.ParseChannelList(sharedSigned+"/"+sharedSigned+"/"+sharedSigned, 2); !errors.Is(err, ErrWrongChannel) {
		t.Errorf("over max: %v", err)
	}
	if codeOf(ErrBadSignature) != CodeWrongChannel {
		t.Errorf("bad signature code = %d", codeOf(ErrBadSignature))
	}
}

func TestParsePublishListTrustsBareIDs(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t, testKey, "sha256")
	priv, pub := strings.Repeat("1", 32), strings.Repeat("2", 32)
	got, err := s.ParsePublishList(priv+"/"+s.SignChannel(pub), 10)
	if err != nil || len(got) != 2 || got[0].ID != priv || got[1].ID != pub {
		t.Fatalf("got %+v, %v", got, err)
	}
	if len(s.Sign("x")) != 64 || s.SigLen() != 64 {
		t.Fatalf("sha256 signatures are 64 hex")
	}
	// The pair still needs its signature on a trusted path.
	if _, err := s.ParsePublishList(priv+":"+pub, 10); !errors.Is(err, ErrWrongChannel) {
		t.Fatalf("unsigned pair: %v", err)
	}
}

func TestNoKeyAcceptsBareIDs(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t, "", "")
	id := strings.Repeat("d", 32)
	if s.SignChannel(id) != id || s.SignPublicChannel(id) != "" {
		t.Fatal("without a key channels are not signed")
	}
	if _, err := s.ParseChannelList(id, 10); err != nil {
		t.Fatal(err)
	}
}

func TestDerivedIDs(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t, testKey, "sha1")
	priv := s.DeriveID(kindPrivate, 42)
	if !isHex32(priv) || priv == s.DeriveID(kindPrivate, 43) || priv != s.DeriveID(kindPrivate, 42) {
		t.Fatalf("derived ids must be stable 32-hex per user: %s", priv)
	}
	if u, ok := s.DerivedUser(kindPrivate, priv); !ok || u != 42 {
		t.Fatalf("DerivedUser = %d, %v", u, ok)
	}
	if _, ok := s.DerivedUser(kindPublic, priv); ok {
		t.Fatal("a private id is not a public one")
	}
	if _, ok := newTestSigner(t, "other key", "sha1").DerivedUser(kindPrivate, priv); ok {
		t.Fatal("another key must not recognise the id")
	}
	if _, ok := s.DerivedUser(kindPrivate, "0123456789abcdef0123456789abcdef"); ok {
		t.Fatal("a random id is not derived")
	}
}

func FuzzParseChannelList(f *testing.F) {
	s := newTestSigner(f, testKey, "sha1")
	priv, pub := strings.Repeat("a", 32), strings.Repeat("b", 32)
	f.Add(s.SignChannel(priv+":"+pub) + "/" + s.SignChannel(pub))
	f.Add(s.SignPublicChannel(pub))
	f.Add(priv + "/" + pub)
	f.Add("//")
	f.Add(priv + ":" + pub + ".")
	f.Fuzz(func(t *testing.T, list string) {
		chans, err := s.ParseChannelList(list, 100)
		if err != nil {
			if !errors.Is(err, ErrWrongChannel) {
				t.Fatalf("error not classified: %v", err)
			}
			return
		}
		if len(chans) == 0 {
			t.Fatal("accepted an empty list")
		}
		for _, ch := range chans {
			for _, id := range []string{ch.ID, ch.PublicID} {
				if id != "" && !isHex32(id) {
					t.Fatalf("accepted id %q", id)
				}
			}
			// Anything accepted with a key carries a valid signature.
			if ch.ID != "" && !strings.Contains(list, ch.ID+".") && !strings.Contains(list, ch.ID+":") {
				t.Fatalf("unsigned element accepted: %+v in %q", ch, list)
			}
		}
	})
}
