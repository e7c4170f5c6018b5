package api

import (
	"strings"
	"testing"
)

var apnsToken = strings.Repeat("ab", 32)

func TestBackendDeviceEndpoints(t *testing.T) {
	a := newTestAPI(t)
	code, m := a.call("POST", "/api/v1/devices", map[string]any{
		"user": "42", "device_id": "dev-1", "platform": "apns", "token": apnsToken, "app_id": "App", "sandbox": true,
	})
	if code != 201 || m["created"] != true {
		t.Fatalf("register: %d %v", code, m)
	}
	// Same device again: an update.
	if code, m = a.call("POST", "/api/v1/devices", map[string]any{"user": "42", "device_id": "dev-1", "platform": "apns", "token": apnsToken}); code != 200 {
		t.Fatalf("re-register: %d %v", code, m)
	}
	// The token registered by another user moves, and the answer says so.
	code, m = a.call("POST", "/api/v1/devices", map[string]any{"user": "43", "device_id": "dev-2", "platform": "apns", "token": apnsToken})
	if code != 201 || m["moved_from"] != "42" {
		t.Fatalf("move: %d %v", code, m)
	}
	if code, m = a.call("GET", "/api/v1/users/42/devices", nil); code != 200 || len(m["devices"].([]any)) != 0 {
		t.Fatalf("old owner still lists the token: %d %v", code, m)
	}
	code, m = a.call("GET", "/api/v1/users/43/devices", nil)
	if ds := m["devices"].([]any); code != 200 || len(ds) != 1 || ds[0].(map[string]any)["id"] != "dev-2" {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _ = a.call("DELETE", "/api/v1/devices/dev-2", nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, m = a.call("DELETE", "/api/v1/devices/dev-2", nil); code != 404 {
		t.Fatalf("delete again: %d %v", code, m)
	}
}

func TestBackendDeviceValidation(t *testing.T) {
	a := newTestAPI(t)
	cases := []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"platform": "apns", "token": apnsToken}, "user"},
		{map[string]any{"user": "1", "platform": "webos", "token": "x"}, "platform"},
		{map[string]any{"user": "1", "platform": "apns", "token": "nothex"}, "token"},
		{map[string]any{"user": "1", "platform": "fcm", "token": "has space"}, "token"},
		{map[string]any{"user": "1", "platform": "fcm", "token": "t", "colour": "red"}, "colour"},
	}
	for _, tc := range cases {
		code, m := a.call("POST", "/api/v1/devices", tc.body)
		c, f := errField(m)
		if code != 400 || c != "invalid_argument" || f != tc.field {
			t.Errorf("%v: %d %s %q, want field %q", tc.body, code, c, f, tc.field)
		}
	}
	if code, m := a.call("GET", "/api/v1/users/1/devices", nil); code != 200 || len(m["devices"].([]any)) != 0 {
		t.Fatalf("a rejected registration stored something: %v", m)
	}
}
