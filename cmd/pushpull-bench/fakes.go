package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

// Bench credentials for the fake APNs: 10-character key and team ids like
// Apple's.
const (
	benchKeyID  = "BENCHKEY01"
	benchTeamID = "BENCHTEAM1"
	benchTopic  = "com.example.bench"
)

// provider is an in-process fake push service that a pushpull child process
// is configured to send to. close stops it.
type provider struct {
	platform string // "apns" or "fcm", as in POST /devices
	appID    string
	// config is the TOML the server loads (PUSHPULL_CONFIG) and env the
	// extra environment it needs (SSL_CERT_FILE to trust the fake).
	config string
	env    []string
	// delivered counts accepted pushes (duplicates included).
	delivered func() int64
	// requests counts every push the fake answered, failures included.
	requests func() int64
	// down makes every push fail with 503 (true) or succeed (false).
	down func(bool)
	// ids returns, per "bid" data value, how many times a push carrying it
	// was accepted and when it was first accepted (the fake's clock). Only
	// when the fake records (newProvider's record).
	ids   func() map[string]arrival
	token func(i int) string
	close func()
}

// newProvider starts the fake for platform and writes what the server
// needs (key or service account, CA certificate, config file) into dir.
// record keeps every request so ids works; otherwise the fake only counts,
// which is cheaper for throughput runs.
func newProvider(platform, dir string, record bool) (*provider, error) {
	switch platform {
	case "apns":
		return newAPNsProvider(dir, record)
	case "fcm":
		return newFCMProvider(dir, record)
	}
	return nil, fmt.Errorf("unknown platform %q", platform)
}

func newAPNsProvider(dir string, record bool) (*provider, error) {
	f, err := fake.NewAPNs(fake.APNsOptions{CountOnly: !record})
	if err != nil {
		return nil, err
	}
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		f.Close()
		return nil, err
	}
	f.AddKey(benchKeyID, benchTeamID, pub)
	keyFile := filepath.Join(dir, "apns-key.p8")
	caFile := filepath.Join(dir, "fake-apns-ca.pem")
	cfgFile := filepath.Join(dir, "apns.toml")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	cfg := fmt.Sprintf(`[apns]
production_url = %q
sandbox_url = %q

[[apns.app]]
id = "bench-ios"
topic = %q
key_file = %q
key_id = %q
team_id = %q
`, f.URL(), f.URL(), benchTopic, keyFile, benchKeyID, benchTeamID)
	if err := writeFiles(map[string][]byte{keyFile: keyPEM, caFile: ca, cfgFile: []byte(cfg)}); err != nil {
		f.Close()
		return nil, err
	}
	return &provider{
		platform: "apns", appID: "bench-ios",
		config: cfgFile,
		// apns.Options.RootCAs is nil in serve, so the system pool is used;
		// on Linux SSL_CERT_FILE replaces it with the fake's certificate.
		env:       []string{"SSL_CERT_FILE=" + caFile},
		delivered: f.Delivered, requests: f.Requests,
		down: func(d bool) {
			if d {
				f.SetDefault(fake.Behavior{Status: 503, Reason: "ServiceUnavailable"})
			} else {
				f.SetDefault(fake.Behavior{})
			}
		},
		ids: func() map[string]arrival {
			out := map[string]arrival{}
			for _, r := range f.Received() {
				if r.Status != 200 {
					continue
				}
				var p struct {
					BID string `json:"bid"`
				}
				if json.Unmarshal(r.Payload, &p) == nil && p.BID != "" {
					out[p.BID] = out[p.BID].add(r.At)
				}
			}
			return out
		},
		token: func(i int) string { return fmt.Sprintf("%064x", i+1) },
		close: f.Close,
	}, nil
}

func newFCMProvider(dir string, record bool) (*provider, error) {
	// The fake FCM speaks plain HTTP/1.1 (as the demo uses it): real FCM
	// is HTTPS, so this measures the client and server without TLS.
	f, err := fake.NewFCM(fake.FCMOptions{CountOnly: !record})
	if err != nil {
		return nil, err
	}
	sa, err := f.ServiceAccountJSON("bench-project")
	if err != nil {
		f.Close()
		return nil, err
	}
	saFile := filepath.Join(dir, "fcm-service-account.json")
	cfgFile := filepath.Join(dir, "fcm.toml")
	cfg := fmt.Sprintf(`[fcm]
endpoint = %q

[[fcm.app]]
id = "bench-android"
credentials_file = %q
`, f.URL()+"/v1", saFile)
	if err := writeFiles(map[string][]byte{saFile: sa, cfgFile: []byte(cfg)}); err != nil {
		f.Close()
		return nil, err
	}
	return &provider{
		platform: "fcm", appID: "bench-android",
		config:    cfgFile,
		delivered: f.Delivered, requests: f.Requests,
		down: func(d bool) {
			if d {
				f.SetDefault(fake.FCMBehavior{Status: 503})
			} else {
				f.SetDefault(fake.FCMBehavior{})
			}
		},
		ids: func() map[string]arrival {
			out := map[string]arrival{}
			for _, r := range f.Received() {
				if r.Status != 200 {
					continue
				}
				if d, ok := r.Message["data"].(map[string]any); ok {
					if b, ok := d["bid"].(string); ok {
						out[b] = out[b].add(r.At)
					}
				}
			}
			return out
		},
		token: func(i int) string { return "bench-fcm-" + strings.Repeat("x", 20) + fmt.Sprint(i) },
		close: f.Close,
	}, nil
}

// arrival is what the fake saw of one job: how many times it was accepted
// and when first.
type arrival struct {
	n     int
	first time.Time
}

func (a arrival) add(at time.Time) arrival {
	if a.n == 0 || at.Before(a.first) {
		a.first = at
	}
	a.n++
	return a
}

func writeFiles(files map[string][]byte) error {
	for name, b := range files {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// serverEnv is the environment that points a server at p.
func (p *provider) serverEnv() []string {
	return append([]string{"PUSHPULL_CONFIG=" + p.config}, p.env...)
}
