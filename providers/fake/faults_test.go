package fake

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAPNsFaults(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	path := "/3/device/" + testToken
	if err := h.f.SetFaults(Faults{FailEvery: -1}); err == nil {
		t.Fatal("negative FailEvery accepted")
	}
	// Every other push fails with 500.
	if err := h.f.SetFaults(Faults{FailEvery: 2}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 4 {
		got = append(got, h.push(t, "POST", path, `{"aps":{}}`, nil).status)
	}
	if want := []int{200, 500, 200, 500}; !slices.Equal(got, want) {
		t.Fatalf("every other 500: %v, want %v", got, want)
	}
	// Down-but-reachable: 503 with Retry-After.
	if err := h.f.SetFaults(Faults{Unavailable: true, RetryAfter: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	a := h.push(t, "POST", path, `{"aps":{}}`, nil)
	if a.status != 503 || a.body["reason"] != APNsServiceUnavailable || a.header.Get("Retry-After") != "3" {
		t.Fatalf("unavailable: %+v", a)
	}
	// Stream reset: the client gets no answer at all.
	if err := h.f.SetFaults(Faults{ResetEvery: 1}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.f.URL()+path, strings.NewReader(`{"aps":{}}`))
	req.Header.Set("authorization", "bearer "+h.bearer)
	req.Header.Set("apns-topic", "com.example.app")
	if res, err := h.hc.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("reset stream answered %d", res.StatusCode)
	}
	if err := h.f.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if s := h.push(t, "POST", path, `{"aps":{}}`, nil).status; s != 200 {
		t.Fatalf("after the faults: %d", s)
	}
	if n := h.f.FaultsInjected(); n != 4 {
		t.Fatalf("FaultsInjected = %d, want 4", n)
	}
	if d := h.f.Delivered(); d != 3 {
		t.Fatalf("Delivered = %d, want 3", d)
	}
}

func TestAPNsRotateCertificate(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	path := "/3/device/" + testToken
	serial := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(h.f.URL(), "https://"), &tls.Config{RootCAs: h.f.CertPool(), NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	if s := h.push(t, "POST", path, `{"aps":{}}`, nil).status; s != 200 {
		t.Fatal(s)
	}
	if err := h.f.RotateCertificate(); err != nil {
		t.Fatal(err)
	}
	if serial() == before {
		t.Fatal("the certificate did not change")
	}
	// The client that trusted Certificate() (the CA) keeps working.
	if s := h.push(t, "POST", path, `{"aps":{}}`, nil).status; s != 200 {
		t.Fatalf("after rotation: %d", s)
	}
	// Certificate() is the CA that CertPool trusts: what to give clients.
	pool := x509.NewCertPool()
	pool.AddCert(h.f.Certificate())
	if !pool.Equal(h.f.CertPool()) {
		t.Fatal("CertPool does not hold exactly Certificate()")
	}
}

func TestFCMFaults(t *testing.T) {
	t.Parallel()
	f, err := NewFCM(FCMOptions{NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	send := func() (int, error) {
		res, err := http.Post(f.URL()+"/v1/projects/p/messages:send", "application/json", strings.NewReader(`{"message":{"token":"t"}}`))
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		if _, err := io.ReadAll(res.Body); err != nil {
			return res.StatusCode, err
		}
		return res.StatusCode, nil
	}
	if err := f.SetFaults(Faults{FailEvery: 2}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 4 {
		s, err := send()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []int{200, 500, 200, 500}; !slices.Equal(got, want) {
		t.Fatalf("every other 500: %v", got)
	}
	// Reset mid-stream: a 200 status line, then a truncated body.
	if err := f.SetFaults(Faults{ResetEvery: 1}); err != nil {
		t.Fatal(err)
	}
	if s, err := send(); err == nil {
		t.Fatalf("reset answered %d with a complete body", s)
	}
	if err := f.SetFaults(Faults{Unavailable: true, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if s, _ := send(); s != 503 {
		t.Fatalf("unavailable: %d", s)
	}
	if f.Delivered() != 2 {
		t.Fatalf("Delivered = %d, want 2", f.Delivered())
	}
}
