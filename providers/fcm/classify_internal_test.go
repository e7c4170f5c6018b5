package fcm

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterParsesSecondsAndDates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":     0,
		"30":   30 * time.Second,
		"0":    0,
		"-5":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for h, want := range cases {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestRedactKeepsEightCharacters(t *testing.T) {
	t.Parallel()
	if got := redact("abcdefghijklmnop"); got != "abcdefgh…" {
		t.Errorf("redact = %q", got)
	}
}
