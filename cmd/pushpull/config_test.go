package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The example file must decode to exactly the defaults: it documents them.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../config.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config.example.toml differs from defaultConfig():\n got %+v\nwant %+v", cfg, want)
	}
}

// Every option in the structs appears in config.example.toml.
func TestExampleConfigListsEveryOption(t *testing.T) {
	b, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}):
				if !strings.Contains(text, "["+key+"]") {
					t.Errorf("section [%s] missing from config.example.toml", key)
				}
				walk(key, f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				if !strings.Contains(text, "[["+prefix+"."+key+"]]") {
					t.Errorf("[[%s.%s]] missing from config.example.toml", prefix, key)
				}
				walk(prefix+"."+key, f.Type.Elem())
			default:
				if !strings.Contains(text, "\n"+key+" = ") && !strings.Contains(text, "\n# "+key+" = ") {
					t.Errorf("option %s.%s missing from config.example.toml", prefix, key)
				}
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}

func TestConfigFileAndEnv(t *testing.T) {
	keyFile := writeFile(t, "key", "file-key-0123456789\n")
	p := writeFile(t, "c.toml", `
[api]
addr = "127.0.0.1:9999"
key_files = ["`+keyFile+`"]
[queue]
backoff_cap = "5m"
[[apns.app]]
id = "a"
topic = "com.example"
`)
	cfg, err := loadConfig(p, []string{"PUSHPULL_CLIENT_ADDR=:7000", "PUSHPULL_API_KEYS=k1-0123456789abcdef, k2-0123456789abcdef", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Addr != "127.0.0.1:9999" || cfg.Client.Addr != ":7000" || cfg.Queue.BackoffCap.Duration != 5*time.Minute {
		t.Fatalf("cfg = %+v", cfg)
	}
	if want := []string{"k1-0123456789abcdef", "k2-0123456789abcdef", "file-key-0123456789"}; !reflect.DeepEqual(cfg.API.Keys, want) {
		t.Fatalf("keys = %q", cfg.API.Keys)
	}
	if len(cfg.APNs.Apps) != 1 || cfg.APNs.Apps[0].Topic != "com.example" {
		t.Fatalf("apps = %+v", cfg.APNs.Apps)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		file, env, key string
	}{
		{"[api]\nadr = \"x\"\n", "", "api.adr"},
		{"[nosuch]\n", "", "nosuch"},
		{"[queue]\nbackoff_cap = \"soon\"\n", "", "backoff_cap"},
		{"[log]\nlevel = \"loud\"\n", "", "log.level"},
		{"[api]\nmax_items = 0\n", "", "api.max_items"},
		{"[api]\nkeys = [\"short\"]\n", "", "api.keys"},
		{"[api]\nkey_files = [\"/does/not/exist\"]\n", "", "api.key_files"},
		{"[api]\ntls_cert = \"c.pem\"\n", "", "api.tls_cert"},
		{"", "PUSHPULL_LIVE_QUEUE_SIZE=-1", "live.queue_size"},
		{"", "PUSHPULL_QUEUE_BACKOFF_CAP=1x", "PUSHPULL_QUEUE_BACKOFF_CAP"},
		{"", "PUSHPULL_NOPE=1", "PUSHPULL_NOPE"},
		{"[relay]\nenabled = true\n[[relay.app]]\nkey = \"B\"\nfcm = \"a\"\n", "", "relay.keys"},
		{"[relay]\nenabled = true\nkeys = [\"DEMO\"]\n[[relay.app]]\nkey = \"B\"\n", "", "relay.keys[0]"},
		{"[relay]\nenabled = true\nlicense_keys = [\"L\"]\n", "", "relay.app"},
		{"[relay]\nenabled = true\nsecret = \"short\"\n", "", "relay.secret"},
		{"[relay]\nenabled = true\nlicense_keys = [\"L\"]\ncallback_scheme = \"ftp\"\n[[relay.app]]\nkey = \"B\"\n", "", "relay.callback_scheme"},
	}
	for _, tc := range cases {
		var env []string
		if tc.env != "" {
			env = []string{tc.env}
		}
		path := ""
		if tc.file != "" {
			path = writeFile(t, "c.toml", tc.file)
		}
		_, err := loadConfig(path, env)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q %q: err = %v, want it to name %s", tc.file, tc.env, err, tc.key)
		}
		var ce *ConfigError
		if tc.key == "nosuch" && !errors.As(err, &ce) {
			t.Errorf("unknown section: err %T", err)
		}
	}
}
