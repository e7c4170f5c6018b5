package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The deploy/ files name flags, environment variables, ports and timeouts
// that must agree with the binary and its defaults; these tests keep them
// in step (the files themselves cannot be run here).

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// uncommented drops comment lines (# ...) and joins continuation lines.
func uncommented(s string) []string {
	var out []string
	cont := ""
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		out = append(out, cont+l)
		cont = ""
	}
	return out
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSystemdUnitMatchesTheBinary(t *testing.T) {
	t.Parallel()
	unit := map[string][]string{}
	for _, l := range uncommented(readDeploy(t, "systemd/pushpull.service")) {
		if k, v, ok := strings.Cut(l, "="); ok {
			unit[k] = append(unit[k], v)
		}
	}
	exec := strings.Fields(unit["ExecStart"][0])
	if len(exec) < 2 || exec[1] != "serve" {
		t.Fatalf("ExecStart %q does not run serve", exec)
	}
	cfg, err := parseServeFlags("serve", exec[2:], io.Discard)
	if err != nil || cfg == "" {
		t.Fatalf("ExecStart flags %q: %v", exec[2:], err)
	}
	var env []string
	for _, e := range unit["Environment"] {
		env = append(env, strings.Trim(e, `"`))
	}
	c := defaultConfig()
	if err := applyEnv(&c, env); err != nil {
		t.Fatalf("Environment: %v", err)
	}
	if sd := unit["StateDirectory"]; len(sd) != 1 || c.Server.DataDir != "/var/lib/"+sd[0] {
		t.Errorf("data_dir %q is not the StateDirectory %v", c.Server.DataDir, sd)
	}
	stop, err := time.ParseDuration(unit["TimeoutStopSec"][0])
	if err != nil || stop <= c.Server.ShutdownTimeout.Duration {
		t.Errorf("TimeoutStopSec %v must exceed shutdown_timeout %v", unit["TimeoutStopSec"], c.Server.ShutdownTimeout)
	}
	if r := unit["ExecReload"]; len(r) != 1 || !strings.Contains(r[0], "-HUP $MAINPID") {
		t.Errorf("ExecReload %v does not send SIGHUP", r)
	}
	for k, want := range map[string]string{
		"KillSignal": "SIGTERM", "Restart": "on-failure", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"SystemCallFilter": "@system-service",
	} {
		if v := unit[k]; len(v) == 0 || v[0] != want {
			t.Errorf("%s = %v, want %s", k, v, want)
		}
	}
	if n, err := strconv.Atoi(unit["LimitNOFILE"][0]); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE %v is low for a live gateway", unit["LimitNOFILE"])
	}
	if len(unit["RestrictAddressFamilies"]) == 0 || len(unit["User"]) == 0 {
		t.Error("RestrictAddressFamilies and User are required")
	}
}

func TestNginxExampleMatchesTheDefaults(t *testing.T) {
	t.Parallel()
	c := defaultConfig()
	conf := strings.Join(uncommented(readDeploy(t, "nginx/pushpull.conf")), "\n")
	up := regexp.MustCompile(`server\s+127\.0\.0\.1:(\d+);`).FindStringSubmatch(conf)
	if up == nil || up[1] != port(t, c.Client.Addr) {
		t.Errorf("upstream %v is not the client listener's port %s", up, port(t, c.Client.Addr))
	}
	if strings.Contains(conf, ":"+port(t, c.API.Addr)) {
		t.Errorf("the publisher listener (port %s) must not be proxied", port(t, c.API.Addr))
	}
	for _, want := range []string{"proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade",
		"proxy_http_version 1.1", "X-Forwarded-For", "proxy_buffering off", "ssl_certificate "} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx example lacks %q", want)
		}
	}
	m := regexp.MustCompile(`proxy_read_timeout\s+(\d+)s;`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatal("no proxy_read_timeout")
	}
	secs, _ := strconv.Atoi(m[1])
	// Outlast a held long poll (bitrix poll_hold, the native 40 s) and
	// several WebSocket ping intervals.
	if need := max(c.Bitrix.PollHold.Duration, 40*time.Second, 3*c.Client.PingInterval.Duration); time.Duration(secs)*time.Second <= need {
		t.Errorf("proxy_read_timeout %ds is not above %v", secs, need)
	}
}

func TestDockerfileMatchesTheDefaults(t *testing.T) {
	t.Parallel()
	c := defaultConfig()
	lines := uncommented(readDeploy(t, "Dockerfile"))
	var env []string
	var expose, volume, user, health string
	final := false
	for _, l := range lines {
		kw, rest, _ := strings.Cut(l, " ")
		if kw == "FROM" {
			final = !strings.Contains(rest, " AS ")
			continue
		}
		if !final {
			continue
		}
		switch kw {
		case "ENV":
			env = append(env, strings.Fields(rest)...)
		case "EXPOSE":
			expose = rest
		case "VOLUME":
			volume = rest
		case "USER":
			user = rest
		case "HEALTHCHECK":
			health = rest
		}
	}
	if err := applyEnv(&c, env); err != nil {
		t.Fatalf("ENV: %v", err)
	}
	if !strings.Contains(volume, `"`+c.Server.DataDir+`"`) {
		t.Errorf("VOLUME %s is not data_dir %s", volume, c.Server.DataDir)
	}
	for _, a := range []string{c.Client.Addr, c.API.Addr} {
		if !strings.Contains(" "+expose+" ", " "+port(t, a)+" ") {
			t.Errorf("EXPOSE %q lacks %s", expose, port(t, a))
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(health, "127.0.0.1:"+port(t, c.Client.Addr)+"/readyz") {
		t.Errorf("HEALTHCHECK %q does not probe /readyz on the client port", health)
	}
}
