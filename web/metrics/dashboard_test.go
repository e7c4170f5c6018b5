package metrics

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

const dashboardFile = "../../deploy/grafana/pushpull.json"

// exprs collects every "expr" string in a Grafana dashboard, at any depth
// (panels, rows' nested panels, templating).
func exprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "expr" {
				*out = append(*out, s)
				continue
			}
			exprs(e, out)
		}
	case []any:
		for _, e := range x {
			exprs(e, out)
		}
	}
}

var (
	metricRe = regexp.MustCompile(`\bpushpull_[a-zA-Z0-9_]+`)
	byRe     = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	matchRe  = regexp.MustCompile(`\{([^}]*)\}`)
	labelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
)

// TestDashboardQueriesExportedMetrics: every pushpull_* metric that the
// Grafana dashboard queries is exported by a fully wired gateway, and every
// label it groups or filters by is one of those metrics' labels.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.FromSlash(dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	var qs []string
	exprs(doc, &qs)
	if len(qs) < 20 {
		t.Fatalf("only %d queries found: the walk misses panels", len(qs))
	}

	g := newGateway(t, hub.Options{QueueSize: 4})
	exercise(t, g)
	// A failure makes the last-failure series exist too.
	g.apns.Script(liveTok, fake.Behavior{Status: 500, Reason: "InternalServerError", Times: 1})
	if _, err := g.push.Push(context.Background(), []push.Request{{Users: []string{"7"}, Notification: providers.Notification{Body: "x"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a provider failure", func() bool { return g.push.ProviderStats()[0].LastFailure != nil })
	samples, names := scrape(t, g.m)
	labels := map[string]map[string]bool{} // metric (and its suffixed names) -> label names
	for k := range samples {
		name, rest, _ := strings.Cut(k, "{")
		set := labels[name]
		if set == nil {
			set = map[string]bool{}
			for _, n := range []string{name, name + "_bucket", name + "_count", name + "_sum"} {
				labels[n] = set
			}
		}
		for _, m := range labelRe.FindAllStringSubmatch(rest, -1) {
			set[m[1]] = true
		}
	}

	used := map[string]bool{}
	for _, q := range qs {
		ms := metricRe.FindAllString(q, -1)
		for _, m := range ms {
			used[m] = true
			if !names[m] {
				t.Errorf("query %q uses %s, which pushpull does not export", q, m)
			}
		}
		var want []string
		for _, b := range byRe.FindAllStringSubmatch(q, -1) {
			for _, l := range strings.Split(b[1], ",") {
				want = append(want, strings.TrimSpace(l))
			}
		}
		for _, sel := range matchRe.FindAllStringSubmatch(q, -1) {
			for _, l := range labelRe.FindAllStringSubmatch(sel[1], -1) {
				want = append(want, l[1])
			}
		}
		for _, l := range want {
			if l == "" || l == "le" {
				continue
			}
			found := false
			for _, m := range ms {
				found = found || labels[m][l]
			}
			if !found {
				t.Errorf("query %q groups or filters by %q, a label none of %v has", q, l, ms)
			}
		}
	}
	for _, must := range []string{"pushpull_connections", "pushpull_pushes_total", "pushpull_queue_jobs", "pushpull_ready",
		"pushpull_provider_last_success_timestamp_seconds", "pushpull_tokens_removed_total", "pushpull_db_file_bytes"} {
		if !used[must] {
			t.Errorf("the dashboard does not show %s", must)
		}
	}
}
