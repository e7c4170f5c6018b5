package hub

import (
	"strings"
	"testing"
)

func TestMIDFormatAndOrder(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{Epoch: 1732780000})
	if h.Epoch() != "1732780000" {
		t.Fatalf("epoch %q", h.Epoch())
	}
	prev := ""
	for i := 1; i <= 1000; i++ {
		mid, _ := h.Publish([]string{"user:1"}, ev("x"))
		if !ValidMID(mid) || !strings.HasPrefix(mid, "1732780000") {
			t.Fatalf("bad mid %q", mid)
		}
		if mid <= prev {
			t.Fatalf("mid %q not after %q", mid, prev)
		}
		prev = mid
	}
	if prev != "17327800000000000000001000" {
		t.Fatalf("1000th mid %q", prev)
	}
}

func TestSmallEpochIsZeroPadded(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{Epoch: 42})
	if h.Epoch() != "0000000042" {
		t.Fatalf("epoch %q", h.Epoch())
	}
	mid, _ := h.Publish([]string{"c"}, ev("x"))
	if mid != "00000000420000000000000001" {
		t.Fatalf("mid %q", mid)
	}
}

func TestValidMID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"17327800000000000000000001":  true,
		"00000000000000000000000000":  true,
		"":                            false,
		"1732780000000000000000001":   false,
		"173278000000000000000000011": false,
		"1732780000000000000000000a":  false,
		"-1732780000000000000000001":  false,
		"1732780000 000000000000001":  false,
	} {
		if got := ValidMID(s); got != want {
			t.Errorf("ValidMID(%q) = %v", s, got)
		}
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		seq  uint64
		kind sinceKind
	}{
		{"", 0, sinceNone},
		{"17327800000000000000000042", 42, sinceOK},
		{"17327800009999999999999999", 9999999999999999, sinceOK},
		{"17327800010000000000000042", 0, sinceBad}, // other epoch
		{"1732780000000000000000042", 0, sinceBad},
		{"1732780000000000000000004x", 0, sinceBad},
	}
	for _, c := range cases {
		seq, kind := parseSince("1732780000", c.in)
		if seq != c.seq || kind != c.kind {
			t.Errorf("parseSince(%q) = %d, %d; want %d, %d", c.in, seq, kind, c.seq, c.kind)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"", "17327800000000000000000042", "1732780000000000000000004x", "99999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		valid := ValidMID(s)
		seq, kind := parseSince("1732780000", s)
		switch kind {
		case sinceNone:
			if s != "" {
				t.Fatalf("%q parsed as empty", s)
			}
		case sinceOK:
			if !valid || !strings.HasPrefix(s, "1732780000") {
				t.Fatalf("%q accepted", s)
			}
			// Round trip: the mid of the parsed counter is the input.
			if got := formatMID("1732780000", seq); got != s {
				t.Fatalf("round trip %q -> %d -> %q", s, seq, got)
			}
		case sinceBad:
			if valid && strings.HasPrefix(s, "1732780000") {
				t.Fatalf("%q rejected", s)
			}
		}
	})
}
