package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Every route the server registers under /api/v1 is in openapi.json, and
// every operation there is a registered route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	a := newTestAPI(t)
	param := regexp.MustCompile(`:([a-z_]+)`)
	registered := map[string]bool{}
	for _, r := range a.e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == "echo_route_not_found" {
			continue
		}
		registered[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes not in openapi.json: %v\nopenapi.json operations with no route: %v", missing, extra)
	}
	if len(registered) < 15 {
		t.Fatalf("only %d routes registered: the test server is not the real one", len(registered))
	}
	code, m := a.call(http.MethodGet, "/api/v1/openapi.json", nil)
	if code != 200 || m["openapi"] != "3.1.0" {
		t.Fatalf("served document: %d", code)
	}
}

// Every publisher route refuses a request without a valid key, in the
// documented shape, before looking at the request.
func TestEveryRouteNeedsTheKey(t *testing.T) {
	a := newTestAPI(t)
	param := regexp.MustCompile(`:[a-z_]+`)
	n := 0
	for _, r := range a.e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == "echo_route_not_found" {
			continue
		}
		for _, key := range []string{"", "wrong-key-0123456789"} {
			req, _ := http.NewRequest(r.Method, a.url+param.ReplaceAllString(r.Path, "x"), strings.NewReader("{}"))
			if key != "" {
				req.Header.Set("X-API-Key", key)
			}
			res, err := a.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
			if c, _ := errField(m); res.StatusCode != 401 || c != "unauthenticated" {
				t.Errorf("%s %s with key %q: %d %v", r.Method, r.Path, key, res.StatusCode, m)
			}
			n++
		}
	}
	if n < 30 {
		t.Fatalf("checked only %d requests", n)
	}
}
