package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig feeds arbitrary TOML and one arbitrary PUSHPULL_
// variable to loadConfig: it never panics, and whatever it accepts is a
// configuration that validates.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), "PUSHPULL_API_ADDR", "127.0.0.1:1")
	f.Add("[api]\nkeys = [\"0123456789abcdef0\"]\n", "PUSHPULL_QUEUE_MAX_ATTEMPTS", "-1")
	f.Add("[[apns.app]]\nid = 1\n", "PUSHPULL_LIVE_EVENT_EXPIRY", "1e9h")
	f.Add("[server]\nshutdown_timeout = \"-5s\"\n", "PUSHPULL_CLIENT_ALLOWED_ORIGINS", "a,,b")
	f.Fuzz(func(t *testing.T, doc, key, value string) {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, []string{key + "=" + value})
		if err != nil {
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("accepted a configuration that does not validate: %v", err)
		}
	})
}
