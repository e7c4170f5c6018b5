package web

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/labstack/echo/v4"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

func TestListenServeHealthAndShutdown(t *testing.T) {
	readyErr := errors.New("db closed")
	var fail atomic.Bool
	s, err := New(Options{
		APIAddr: "127.0.0.1:0", ClientAddr: "127.0.0.1:0", Version: "test",
		Ready: func() error {
			if fail.Load() {
				return readyErr
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	for _, base := range []string{"http://" + s.APIAddr(), "http://" + s.ClientAddr()} {
		if code, m := get(t, base+"/healthz"); code != 200 || m["status"] != "ok" {
			t.Fatalf("healthz %d %v", code, m)
		}
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Fatalf("readyz %d", code)
		}
		code, m := get(t, base+"/nope")
		if e, _ := m["error"].(map[string]any); code != 404 || e["code"] != "not_found" {
			t.Fatalf("404 shape: %d %v", code, m)
		}
	}
	fail.Store(true)
	if code, _ := get(t, "http://"+s.APIAddr()+"/readyz"); code != 503 {
		t.Fatalf("readyz with failing dependency: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.APIAddr() + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestListenPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := New(Options{APIAddr: ln.Addr().String(), ClientAddr: "127.0.0.1:0"})
	err = s.Listen()
	var le *ListenError
	if !errors.As(err, &le) || le.Listener != "api" {
		t.Fatalf("err = %v", err)
	}
}

// A client cannot choose the address rate limits and logs see.
func TestRealIPIgnoresForwardedHeaders(t *testing.T) {
	s, err := New(Options{APIAddr: "127.0.0.1:0", ClientAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Client.GET("/ip", func(c echo.Context) error { return c.String(200, c.RealIP()) })
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Shutdown(context.Background())
	req, _ := http.NewRequest("GET", "http://"+s.ClientAddr()+"/ip", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "127.0.0.1" {
		t.Fatalf("RealIP = %q", b)
	}
}

// A configured proxy's X-Forwarded-For is believed; anyone else's is not.
func TestTrustedProxyForwardedFor(t *testing.T) {
	if _, err := New(Options{TrustedProxies: []string{"nonsense"}}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	s, err := New(Options{APIAddr: "127.0.0.1:0", ClientAddr: "127.0.0.1:0", TrustedProxies: []string{"127.0.0.1/32"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Client.GET("/ip", func(c echo.Context) error { return c.String(200, c.RealIP()) })
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Shutdown(context.Background())
	req, _ := http.NewRequest("GET", "http://"+s.ClientAddr()+"/ip", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "203.0.113.7" {
		t.Fatalf("RealIP behind a trusted proxy = %q", b)
	}
}
