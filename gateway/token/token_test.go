package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func newIssuer(t *testing.T, now *time.Time) *Issuer {
	t.Helper()
	i, err := New(Options{Secret: secret, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestMintVerifyRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	i := newIssuer(t, &now)
	s, exp, err := i.Mint("42", time.Hour, []string{"IM_CHAT_17"}, ClientWeb)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("exp = %v", exp)
	}
	c, err := i.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "42" || c.Client != ClientWeb || !c.Allows("IM_CHAT_17") || c.Allows("other") {
		t.Fatalf("claims = %+v", c)
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	i := newIssuer(t, &now)
	good, _, _ := i.Mint("42", time.Minute, nil, "")

	other, _ := New(Options{Secret: []byte(strings.Repeat("x", 32)), Now: func() time.Time { return now }})
	wrongKey, _, _ := other.Mint("42", time.Minute, nil, "")

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "42", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}).SignedString(secret)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "42", "iat": now.Unix()}).SignedString(secret)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}).SignedString(secret)

	for name, s := range map[string]string{
		"wrong key": wrongKey, "alg none": none, "alg HS512": hs512,
		"no exp": noExp, "no sub": noSub, "garbage": "a.b.c", "empty": "",
		"tampered": good[:len(good)-2] + "AA",
	} {
		if _, err := i.Verify(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}

	now = now.Add(2 * time.Minute)
	if _, err := i.Verify(good); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: err = %v", err)
	}
}

func TestMintLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	i := newIssuer(t, &now)
	if _, _, err := i.Mint("", 0, nil, ""); err == nil {
		t.Error("empty user accepted")
	}
	if _, _, err := i.Mint("1", 8*24*time.Hour, nil, ""); err == nil {
		t.Error("ttl above max accepted")
	}
	if _, exp, err := i.Mint("1", 0, nil, ""); err != nil || !exp.Equal(now.Add(12*time.Hour)) {
		t.Errorf("default ttl: exp=%v err=%v", exp, err)
	}
	if _, err := New(Options{Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
}
