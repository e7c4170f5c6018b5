package api

// Hostile input over every publisher endpoint: each request gets the
// documented error (status, code, field where the contract names one) and
// changes nothing, which is checked by reading the state back (every
// bbolt key and value, the seeded watch tag and device list) after each
// case.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// hostileCase is one request and the answer it must get.
type hostileCase struct {
	name   string
	method string
	path   string
	body   string
	header map[string]string // replaces the defaults (key, JSON)
	status int
	code   string
	field  string // checked when not empty
}

// raw sends a request and returns status and body without judging them.
func (a *testAPI) raw(method, path, body string, header map[string]string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// stateDigest hashes every bucket, key and value of the database plus the
// in-memory state the API can read back.
func (a *testAPI) stateDigest() string {
	a.t.Helper()
	h := sha256.New()
	err := a.db.View(func(tx *bolt.Tx) error {
		var walk func(b *bolt.Bucket, depth int) error
		walk = func(b *bolt.Bucket, depth int) error {
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(h, "%d|%q|%q\n", depth, k, v)
				if v == nil {
					return walk(b.Bucket(k), depth+1)
				}
				return nil
			})
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			fmt.Fprintf(h, "bucket %q\n", name)
			return walk(b, 1)
		})
	})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, p := range []string{"/api/v1/watch/T1", "/api/v1/users/42/devices", "/api/v1/users/43/devices", "/api/v1/queue/dead"} {
		_, raw := a.raw("GET", p, "", nil)
		h.Write(raw)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// seedHostile gives the state something to lose: a device, a watch and a
// dead letter.
func seedHostile(t *testing.T, a *testAPI) {
	t.Helper()
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/api/v1/devices", `{"user":"42","device_id":"dev-1","platform":"fcm","token":"seed-token:APA91b","app_id":"App"}`},
		{"POST", "/api/v1/watch", `{"users":["42"],"tags":["T1"],"ttl":600}`},
		{"POST", "/api/v1/push", `{"notifications":[{"users":["42"],"title":"t","body":"b"}]}`},
	} {
		if code, raw := a.raw(s.method, s.path, s.body, nil); code/100 != 2 {
			t.Fatalf("seed %s %s: %d %s", s.method, s.path, code, raw)
		}
	}
}

// nested is JSON nested n levels deep.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// manyUsers is a JSON array of n short user ids.
func manyUsers(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%d"`, i)
	}
	b.WriteByte(']')
	return b.String()
}

func hostileCases() []hostileCase {
	bodyEndpoints := []struct{ method, path string }{
		{"POST", "/api/v1/events"}, {"POST", "/api/v1/push"}, {"POST", "/api/v1/push/cancel"},
		{"POST", "/api/v1/watch"}, {"POST", "/api/v1/watch/extend"}, {"DELETE", "/api/v1/watch"},
		{"POST", "/api/v1/devices"}, {"POST", "/api/v1/tokens"}, {"POST", "/api/v1/queue/dead/retry"},
	}
	big := `{"x":"` + strings.Repeat("a", 10<<20) + `"}`
	var cs []hostileCase
	for _, ep := range bodyEndpoints {
		at := ep.method + " " + ep.path + ": "
		add := func(name, body string, status int, code string) {
			cs = append(cs, hostileCase{name: at + name, method: ep.method, path: ep.path, body: body, status: status, code: code})
		}
		add("malformed JSON", `{"events":[`, 400, "invalid_argument")
		add("not an object", `"hello"`, 400, "invalid_argument")
		add("array at top", `[]`, 400, "invalid_argument")
		add("empty body", ``, 400, "invalid_argument")
		add("trailing data", `{} {}`, 400, "invalid_argument")
		add("unknown field", `{"evil":1}`, 400, "invalid_argument")
		add("deep nesting", `{"x":`+nested(100000)+`}`, 400, "invalid_argument")
		add("10 MB body", big, 413, "payload_too_large")
		add("NUL bytes", "{\x00}", 400, "invalid_argument")
		cs = append(cs, hostileCase{name: at + "wrong content type", method: ep.method, path: ep.path,
			body: `{}`, header: map[string]string{"Content-Type": "text/plain"}, status: 400, code: "invalid_argument"})
		for _, h := range []map[string]string{
			{"Authorization": ""},
			{"Authorization": "Bearer wrong-key-0123456789abc"},
			{"Authorization": "Bearer " + strings.ToUpper(testKey)},
			{"Authorization": "Basic " + testKey},
			{"Authorization": "", "X-API-Key": testKey + "x"},
		} {
			cs = append(cs, hostileCase{name: at + "auth " + fmt.Sprint(h), method: ep.method, path: ep.path,
				body: `{}`, header: h, status: 401, code: "unauthenticated"})
		}
	}
	tooMany := manyUsers(100000)
	specific := []hostileCase{
		// Wrong types and huge numbers.
		{name: "events as string", method: "POST", path: "/api/v1/events", body: `{"events":"x"}`, field: "events"},
		{name: "users as string", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":"42","title":"t"}]}`, field: "notifications.users"},
		{name: "badge as string", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"badge":"3"}]}`},
		{name: "expiry 1e309", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","expiry":1e309}]}`},
		{name: "expiry 2^70", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","expiry":1180591620717411303424}]}`},
		{name: "expiry negative", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","expiry":-1}]}`, field: "notifications[0].expiry"},
		{name: "delay huge", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","delay":9223372036854775807}]}`, field: "notifications[0].delay"},
		{name: "badge huge", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","badge":99999999999999999999}]}`},
		{name: "watch ttl huge", method: "POST", path: "/api/v1/watch", body: `{"users":["42"],"tags":["T2"],"ttl":1e300}`},
		{name: "watch ttl negative", method: "POST", path: "/api/v1/watch", body: `{"users":["42"],"tags":["T2"],"ttl":-5}`},
		{name: "token ttl huge", method: "POST", path: "/api/v1/tokens", body: `{"user":"42","ttl":1e300}`},
		{name: "token ttl negative", method: "POST", path: "/api/v1/tokens", body: `{"user":"42","ttl":-1}`},
		{name: "event expiry huge", method: "POST", path: "/api/v1/events", body: `{"events":[{"users":["42"],"module_id":"m","command":"c","expiry":1e300}]}`},
		// 100,000 recipients (under the body limit: the recipient limit speaks).
		{name: "100k push users", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":` + tooMany + `,"title":"t"}]}`, field: "notifications[0].users"},
		{name: "100k event users", method: "POST", path: "/api/v1/events", body: `{"events":[{"users":` + tooMany + `,"module_id":"m","command":"c"}]}`, field: "events[0].users"},
		{name: "100k watch users", method: "POST", path: "/api/v1/watch", body: `{"users":` + tooMany + `,"tags":["T2"]}`},
		{name: "100k cancel users", method: "POST", path: "/api/v1/push/cancel", body: `{"users":` + tooMany + `,"tag":"x"}`, field: "users"},
		// Invalid UTF-8 and control characters.
		{name: "invalid UTF-8 user (push)", method: "POST", path: "/api/v1/push", body: "{\"notifications\":[{\"users\":[\"\xff\xfe\"],\"title\":\"t\"}]}"},
		{name: "invalid UTF-8 user (event)", method: "POST", path: "/api/v1/events", body: "{\"events\":[{\"users\":[\"a\xc3\"],\"module_id\":\"m\",\"command\":\"c\"}]}"},
		{name: "invalid UTF-8 tag (watch)", method: "POST", path: "/api/v1/watch", body: "{\"users\":[\"42\"],\"tags\":[\"\xed\xa0\x80\"]}"},
		{name: "invalid UTF-8 device token", method: "POST", path: "/api/v1/devices", body: "{\"user\":\"42\",\"platform\":\"fcm\",\"token\":\"tok\xff\"}"},
		{name: "NUL in device token", method: "POST", path: "/api/v1/devices", body: `{"user":"42","platform":"fcm","token":"tok\u0000en"}`, field: "token"},
		{name: "newline in device token", method: "POST", path: "/api/v1/devices", body: `{"user":"42","platform":"fcm","token":"tok\nen"}`, field: "token"},
		{name: "CRLF in apns token", method: "POST", path: "/api/v1/devices", body: `{"user":"42","platform":"apns","token":"ab\r\nab"}`, field: "token"},
		{name: "NUL in user", method: "POST", path: "/api/v1/devices", body: `{"user":"4\u00002","platform":"fcm","token":"tok"}`, field: "user"},
		{name: "control in push device token", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"devices":[{"platform":"fcm","token":"a\u0001b","app_id":"App"}],"title":"t"}]}`},
		{name: "NUL in watch tag", method: "POST", path: "/api/v1/watch", body: `{"users":["42"],"tags":["T\u00001"]}`},
		{name: "NUL in event user", method: "POST", path: "/api/v1/events", body: `{"events":[{"users":["4\u00002"],"module_id":"m","command":"c"}]}`},
		// Header injection through the raw provider overrides.
		{name: "apns header CRLF", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","apns":{"headers":{"apns-collapse-id":"x\r\nX-Evil: 1"}}}]}`, field: "notifications[0].apns"},
		{name: "apns header name injection", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","apns":{"headers":{"X-Evil\r\nHost":"x"}}}]}`, field: "notifications[0].apns"},
		{name: "apns headers not object", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","apns":{"headers":"apns-topic: x"}}]}`, field: "notifications[0].apns"},
		{name: "apns not object", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","apns":"x"}]}`, field: "notifications[0].apns"},
		{name: "fcm token override", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","fcm":{"token":"someone-else"}}]}`, field: "notifications[0].fcm"},
		{name: "fcm not object", method: "POST", path: "/api/v1/push", body: `{"notifications":[{"users":["42"],"title":"t","fcm":[1]}]}`, field: "notifications[0].fcm"},
		// Path traversal and odd ids.
		{name: "status traversal", method: "GET", path: "/api/v1/push/..%2F..%2Fetc%2Fpasswd", status: 404, code: "not_found"},
		{name: "status NUL", method: "GET", path: "/api/v1/push/a%00b", status: 404, code: "not_found"},
		{name: "delete device traversal", method: "DELETE", path: "/api/v1/devices/..%2Fdev-1", status: 404, code: "not_found"},
		{name: "delete device encoded dots", method: "DELETE", path: "/api/v1/devices/%2e%2e", status: 404, code: "not_found"},
		{name: "delete device NUL", method: "DELETE", path: "/api/v1/devices/dev-1%00", status: 404, code: "not_found"},
		{name: "dead limit huge", method: "GET", path: "/api/v1/queue/dead?limit=99999999999999999999"},
		{name: "dead limit negative", method: "GET", path: "/api/v1/queue/dead?limit=-1"},
		{name: "dead cursor garbage", method: "GET", path: "/api/v1/queue/dead?cursor=%ff%00"},
		{name: "online users 100k", method: "GET", path: "/api/v1/online?users=" + strings.Repeat("1,", 20000)},
		{name: "config without user", method: "GET", path: "/api/v1/config"},
		{name: "dead retry both", method: "POST", path: "/api/v1/queue/dead/retry", body: `{"ids":["x"],"all":true}`},
	}
	for _, c := range specific {
		if c.status == 0 {
			c.status, c.code = 400, "invalid_argument"
		}
		cs = append(cs, c)
	}
	return cs
}

func TestHostileInputChangesNothing(t *testing.T) {
	a := newTestAPI(t)
	seedHostile(t, a)
	before := a.stateDigest()
	cases := hostileCases()
	for _, c := range cases {
		code, raw := a.raw(c.method, c.path, c.body, c.header)
		var m struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Errorf("%s: %d non-JSON answer %.200q", c.name, code, raw)
			continue
		}
		if code != c.status || m.Error.Code != c.code || (c.field != "" && m.Error.Field != c.field) {
			t.Errorf("%s: got %d %s field %q (%s), want %d %s field %q", c.name, code, m.Error.Code, m.Error.Field, m.Error.Message, c.status, c.code, c.field)
		}
		if bytes.Contains(raw, []byte(testKey)) {
			t.Errorf("%s: the answer echoes the API key", c.name)
		}
		if after := a.stateDigest(); after != before {
			t.Fatalf("%s: state changed", c.name)
		}
	}
	t.Logf("FIGURE hostile/api cases=%d state_changes=0", len(cases))
}
