package bitrix

// Hostile CHANNEL_ID lists on the subscriber endpoints: bad, foreign and
// mangled signatures, malformed ids, traversal and control characters.
// Each is refused with Bitrix code 4010 (HTTP 400 for long polling, close
// 4010 for WebSocket) before anything is subscribed, and a refused client
// never sees the victim's events.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestHostileChannelIDs(t *testing.T) {
	t.Parallel()
	// A short hold: the genuine poll at the end times out quickly (304).
	e := newEnv(t, Options{PollHold: 200 * time.Millisecond})
	list, priv := e.userChannels(t, 7, 4)
	good := strings.Split(list, "/")[0] // the private element, "priv:pub.sig"
	value, sig, _ := strings.Cut(good, ".")
	_, pub, _ := strings.Cut(value, ":")

	other, err := NewSigner("another-portal-key", "sha1")
	if err != nil {
		t.Fatal(err)
	}
	sha256Signer, err := NewSigner(testKey, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		last := s[len(s)-1]
		r := byte('0')
		if last == '0' {
			r = '1'
		}
		return s[:len(s)-1] + string(r)
	}
	bad := map[string]string{
		"flipped signature":        value + "." + flip(sig),
		"signed by another key":    other.SignChannel(value),
		"sha256 signature on sha1": sha256Signer.SignChannel(value),
		"private id unsigned":      priv,
		"pair unsigned":            value,
		"empty signature":          value + ".",
		"truncated signature":      value + "." + sig[:len(sig)-2],
		"signature too long":       value + "." + sig + "00",
		"extra dot":                good + ".x",
		"foreign public signature": priv + "." + other.Sign("public:"+priv),
		"pair swapped":             pub + ":" + priv + "." + sig,
		"uppercase id":             strings.ToUpper(priv) + "." + e.s.signer.Sign(strings.ToUpper(priv)),
		"31 hex":                   priv[:31] + "." + e.s.signer.Sign(priv[:31]),
		"33 hex":                   priv + "0." + e.s.signer.Sign(priv+"0"),
		"not hex":                  strings.Repeat("g", 32) + "." + e.s.signer.Sign(strings.Repeat("g", 32)),
		"traversal":                "../../../etc/passwd",
		"encoded traversal":        "..%2F..%2Fetc",
		"NUL":                      priv + "\x00." + sig,
		"CRLF":                     priv + "\r\nX-Evil: 1." + sig,
		"valid then bad":           good + "/" + value + "." + flip(sig),
		"trailing slash":           good + "/",
		"empty":                    "",
		"only slashes":             "///",
		"too many channels":        strings.Repeat(good+"/", 1000) + good,
		"unicode":                  "ü" + priv[1:] + "." + sig,
	}
	before := e.hub.Stats()
	n := 0
	for name, id := range bad {
		for _, path := range []string{"/bitrix/sub/", "/bitrix/subws/"} {
			res, body := e.do(t, http.MethodGet, e.sub.URL+path+"?CHANNEL_ID="+q(id), nil)
			n++
			if res.StatusCode != http.StatusBadRequest || string(body) != "4010: Wrong Channel Id." {
				t.Errorf("%s on %s: %d %q", name, path, res.StatusCode, body)
			}
		}
		// WebSocket: accepted, then closed 4010, having received nothing.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.sub.URL, "http")+"/bitrix/subws/?CHANNEL_ID="+q(id), nil)
		n++
		if err != nil {
			cancel()
			t.Errorf("%s: dial: %v", name, err)
			continue
		}
		_, msg, err := c.Read(ctx)
		if code := websocket.CloseStatus(err); code != websocket.StatusCode(CodeWrongChannel) {
			t.Errorf("%s: WebSocket got %q, close %v (%v)", name, msg, code, err)
		}
		c.CloseNow()
		cancel()
	}
	waitUntil(t, "refused connections gone", func() bool { return e.hub.Stats().Conns == before.Conns })
	if after := e.hub.Stats(); after.Channels != before.Channels || after.HistoryEvents != before.HistoryEvents {
		t.Fatalf("hub state changed: %+v -> %+v", before, after)
	}
	// The genuine list still works: the refusals were about the input.
	res, _ := e.do(t, http.MethodGet, e.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list)+"&revision=19&mid=0", nil, "If-Modified-Since", time.Now().UTC().Format(http.TimeFormat))
	if res.StatusCode == http.StatusBadRequest {
		t.Fatalf("the genuine list is refused: %d", res.StatusCode)
	}
	t.Logf("FIGURE hostile/bitrix-channels cases=%d accepted=0", n)
}
