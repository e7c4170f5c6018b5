package live

import (
	"encoding/json"
	"testing"
	"time"
)

// The backend's extra is kept whatever its whitespace, and the result is
// always a JSON object.
func TestWithServerTimeKeepsExtraValid(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, extra := range []string{"", "null", "{}", "{ }", " {\n} ", `{"a":1}`, ` { "a" : 1 } `} {
		raw := extra
		if extra == "null" {
			raw = ""
		}
		var m map[string]any
		if err := json.Unmarshal(withServerTime(json.RawMessage(raw), now), &m); err != nil {
			t.Fatalf("extra %q: %v", extra, err)
		}
		if m["server_time"] != "2026-11-28T10:00:00Z" {
			t.Fatalf("extra %q: %v", extra, m)
		}
		if (extra == `{"a":1}` || extra == ` { "a" : 1 } `) && m["a"] != 1.0 {
			t.Fatalf("extra %q lost its key: %v", extra, m)
		}
	}
}
