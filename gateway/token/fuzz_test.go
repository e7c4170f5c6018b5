package token

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify: it never panics, every
// failure wraps ErrInvalid or ErrExpired, and nothing verifies unless it
// names a user and has not expired. Seeds include forgeries (alg none,
// another algorithm, a stripped signature).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1700000000, 0)
	iss, err := New(Options{Secret: []byte(strings.Repeat("f", 32)), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	good, _, err := iss.Mint("42", time.Hour, []string{"T"}, "web")
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9." + parts[1] + "." + parts[2],
		"", "a.b.c", "....",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if c.User == "" || !c.ExpiresAt.After(now.Add(-time.Minute)) {
			t.Fatalf("verified claims %+v", c)
		}
	})
}

// FuzzMintVerify checks that whatever Mint signs, Verify returns intact.
func FuzzMintVerify(f *testing.F) {
	now := time.Unix(1700000000, 0)
	iss, err := New(Options{Secret: []byte(strings.Repeat("m", 32)), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("42", "IM_CHAT_17", "web", int64(3600))
	f.Fuzz(func(t *testing.T, user, tag, client string, ttl int64) {
		var tags []string
		if tag != "" {
			tags = []string{tag}
		}
		s, _, err := iss.Mint(user, time.Duration(ttl)*time.Second, tags, client)
		if err != nil {
			return
		}
		c, err := iss.Verify(s)
		if err != nil {
			t.Fatalf("minted token refused: %v", err)
		}
		if c.User != user || c.Client != client || !slices.Equal(c.Tags, tags) {
			t.Fatalf("claims changed: %+v", c)
		}
	})
}
