package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

func TestWrongKeyIsRejectedAndTokenKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	// The fake now trusts another key under the same kid.
	_, otherPub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	e.prod.AddKey(keyID, teamID, otherPub)
	r := e.send1(t, msg(tok(0), &providers.Notification{Body: "x"}))
	if r.Class != providers.Rejected || r.Reason != fake.APNsInvalidProviderToken || r.Status != 403 {
		t.Fatalf("%+v", r)
	}
}

func TestAgedTokenIsRetried(t *testing.T) {
	t.Parallel()
	// The fake's clock says our JWT (iat = now) is two hours old.
	e := newEnv(t, fake.APNsOptions{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}, nil)
	r := e.send1(t, msg(tok(0), &providers.Notification{Body: "x"}))
	if r.Class != providers.Retry || r.Reason != fake.APNsExpiredProviderToken {
		t.Fatalf("%+v", r)
	}
}

// countHandler counts log records whose message contains sub.
type countHandler struct {
	sub string
	n   *atomic.Int32
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h countHandler) WithGroup(string) slog.Handler            { return h }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.sub) {
		h.n.Add(1)
	}
	return nil
}

func newCountingLogger(sub string, n *atomic.Int32) *slog.Logger {
	return slog.New(countHandler{sub: sub, n: n})
}

// TestExpiredProviderTokenRenewsOnce makes the provider hold a JWT issued
// two hours ago: a burst of pushes all get 403 ExpiredProviderToken, the
// token is renewed exactly once, and the next pushes are delivered.
func TestExpiredProviderTokenRenewsOnce(t *testing.T) {
	t.Parallel()
	var renewals atomic.Int32
	e := newEnv(t, fake.APNsOptions{}, func(o *Options) {
		o.Logger = newCountingLogger("provider token renewed", &renewals)
		o.Concurrency = 100
	})
	a := e.p.apps[appID]
	stale := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": teamID, "iat": time.Now().Add(-2 * time.Hour).Unix()})
	stale.Header["kid"] = keyID
	bearer, err := stale.SignedString(a.tok.AuthKey)
	if err != nil {
		t.Fatal(err)
	}
	a.tok.Lock()
	a.tok.Bearer, a.tok.IssuedAt = bearer, time.Now().Unix() // apns2 believes it is fresh
	a.tok.Unlock()

	n := &providers.Notification{Body: "x"}
	batch := make([]providers.Message, 100)
	for i := range batch {
		batch[i] = msg(tok(i), n)
	}
	expired := 0
	for i, r := range e.p.Send(context.Background(), batch) {
		switch {
		case r.Class == providers.Retry && r.Reason == fake.APNsExpiredProviderToken:
			expired++
		case r.Class == providers.Delivered: // sent after the renewal
		default:
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if expired == 0 {
		t.Fatal("no push saw ExpiredProviderToken")
	}
	if got := renewals.Load(); got != 1 {
		t.Fatalf("token renewed %d times for one stale token, want 1", got)
	}
	for i, r := range e.p.Send(context.Background(), batch) {
		if r.Class != providers.Delivered {
			t.Fatalf("after renewal, result %d: %+v", i, r)
		}
	}
	recv := e.prod.Received()
	last := recv[len(recv)-1].Bearer
	if last == bearer || last == "" {
		t.Fatal("the stale JWT is still in use")
	}
}

// writeClientCert writes a self-signed push certificate and its key as one
// PEM file and returns its path and certificate.
func writeClientCert(t *testing.T, cn string) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	body := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	path := filepath.Join(t.TempDir(), "push.pem")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert
}

func newCertProvider(t *testing.T, f *fake.APNs, certFile, password string) (*Provider, error) {
	t.Helper()
	p, err := New(Options{
		Apps:          []App{{ID: appID, Topic: topic, CertFile: certFile, CertPassword: password}},
		ProductionURL: f.URL(),
		RootCAs:       f.CertPool(),
		Logger:        discard(),
	})
	if err == nil {
		t.Cleanup(func() { _ = p.Close() })
	}
	return p, err
}

func TestCertificateAuthPEM(t *testing.T) {
	t.Parallel()
	path, cert := writeClientCert(t, "Apple Push Services: "+topic)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	f, err := fake.NewAPNs(fake.APNsOptions{ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	p, err := newCertProvider(t, f, path, "")
	if err != nil {
		t.Fatal(err)
	}
	res := p.Send(context.Background(), []providers.Message{msg(tok(0), &providers.Notification{Body: "x"})})
	if res[0].Class != providers.Delivered {
		t.Fatalf("%+v", res[0])
	}
	got := f.Received()[0]
	if got.ClientCertCN != "Apple Push Services: "+topic || got.Bearer != "" {
		t.Fatalf("fake saw CN %q bearer %q", got.ClientCertCN, got.Bearer)
	}
}

func TestCertificateAuthP12(t *testing.T) {
	t.Parallel()
	f, err := fake.NewAPNs(fake.APNsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)

	// OpenSSL 3's default export: the error must say what to do.
	_, err = newCertProvider(t, f, "testdata/openssl3-default.p12", "secret")
	if !errors.Is(err, ErrLegacyP12) || !strings.Contains(err.Error(), "-legacy") || !strings.Contains(err.Error(), "apps[0].cert_file") {
		t.Fatalf("default .p12: err = %v, want ErrLegacyP12 naming the field and -legacy", err)
	}
	// A wrong password is a different problem.
	_, err = newCertProvider(t, f, "testdata/openssl3-legacy.p12", "wrong")
	if err == nil || errors.Is(err, ErrLegacyP12) {
		t.Fatalf("wrong password: err = %v", err)
	}
	p, err := newCertProvider(t, f, "testdata/openssl3-legacy.p12", "secret")
	if err != nil {
		t.Fatalf("-legacy .p12: %v", err)
	}
	res := p.Send(context.Background(), []providers.Message{msg(tok(0), &providers.Notification{Body: "x"})})
	if res[0].Class != providers.Delivered || f.Received()[0].ClientCertCN != "Apple Push Services: com.example.fixture" {
		t.Fatalf("%+v", res[0])
	}
}

func TestKeyLoadingErrors(t *testing.T) {
	t.Parallel()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	cases := map[string]struct {
		app  App
		want string
	}{
		"garbage key": {App{Key: []byte("nope")}, "apps[0].key: want a .p8"},
		"no file":     {App{KeyFile: filepath.Join(t.TempDir(), "missing.p8")}, "apps[0].key_file"},
		"P-384":       {App{Key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}, "APNs needs P-256"},
		"no cert":     {App{CertFile: filepath.Join(t.TempDir(), "missing.pem")}, "apps[0].cert_file"},
	}
	for name, c := range cases {
		a := c.app
		a.ID, a.Topic = appID, topic
		if a.CertFile == "" {
			a.KeyID, a.TeamID = keyID, teamID
		}
		_, err := New(Options{Apps: []App{a}, Logger: discard()})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
}
