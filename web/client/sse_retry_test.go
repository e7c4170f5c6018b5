package client

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
)

// TestSSERetryIsSpread: each stream names its own reconnect delay within
// 2–5 s, so that browsers do not all return at the same moment after a
// restart.
func TestSSERetryIsSpread(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	seen := map[int]bool{}
	for i := 0; i < 8; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/sub/sse?token="+e.token("ivy"), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		cancel()
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "retry:")))
		if err != nil || v < 2000 || v > 5000 {
			t.Fatalf("first line %q: want retry: 2000..5000", line)
		}
		seen[v] = true
	}
	if len(seen) < 2 {
		t.Errorf("8 streams all got the same retry %v", seen)
	}
}
