package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

// demoAPNsToken and demoFCMToken are the two demo devices' tokens.
const (
	demoAPNsToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	demoFCMToken  = "demo-fcm-token:APA91bDemo"
)

// runDemo shows the push pipeline end to end on one machine: it starts a
// fake APNs (HTTP/2, TLS, JWT checked) and a fake FCM (OAuth through a
// service-account file) in-process, a gateway on a temporary data dir
// configured against them, registers two devices and sends a push through
// the public HTTP API with an API key, then prints what each fake received
// and the job states.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for the deliveries")
	verbose := fs.Bool("v", false, "log the gateway's dispatch lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := os.Stdout
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dir, err := os.MkdirTemp("", "pushpull-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	d, err := startDemo(ctx, dir, log)
	if err != nil {
		return err
	}
	defer d.close()
	fmt.Fprintf(out, "fake APNs at %s, fake FCM at %s, gateway API at %s (data in %s)\n\n", d.apns.URL(), d.fcm.URL(), d.url, dir)

	for _, body := range []string{
		`{"user":"42","device_id":"demo-iphone","platform":"apns","token":"` + demoAPNsToken + `","app_id":"demo-ios","name":"Demo iPhone"}`,
		`{"user":"42","device_id":"demo-pixel","platform":"fcm","token":"` + demoFCMToken + `","app_id":"demo-android","name":"Demo Pixel"}`,
	} {
		if _, err := d.call(ctx, http.MethodPost, "/api/v1/devices", body, http.StatusOK, http.StatusCreated); err != nil {
			return fmt.Errorf("registering a demo device: %w", err)
		}
	}
	fmt.Fprintln(out, "registered 2 devices for user 42: an iPhone (APNs) and a Pixel (FCM)")

	pushBody := `{"notifications":[{"users":["42"],"title":"Anna","body":"Hi there","badge":3,"sound":"default",
		"data":{"chat":17},"tag":"IM_MESS","sub_tag":"IM_MESS_17","expiry":600}]}`
	fmt.Fprintf(out, "POST /api/v1/push %s\n", compactJSON(pushBody))
	raw, err := d.call(ctx, http.MethodPost, "/api/v1/push", pushBody, http.StatusAccepted)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "-> 202 %s\n\n", raw)
	var res api.PushResponse
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Results) != 1 {
		return fmt.Errorf("unexpected push answer %s: %v", raw, err)
	}

	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := d.apns.WaitDelivered(wctx, 1); err != nil {
		return fmt.Errorf("waiting for the APNs delivery: %w", err)
	}
	if err := d.fcm.WaitDelivered(wctx, 1); err != nil {
		return fmt.Errorf("waiting for the FCM delivery: %w", err)
	}
	for _, r := range d.apns.Received() {
		fmt.Fprintf(out, "fake APNs received %s %s\n  topic=%s push-type=%s priority=%s collapse-id=%s expiration=%s\n  payload %s\n",
			r.Method, r.Path, r.Topic, r.PushType, r.Priority, r.CollapseID, r.Expiration, r.Payload)
	}
	for _, r := range d.fcm.Received() {
		fmt.Fprintf(out, "fake FCM received for project %s (OAuth token %t)\n  message %s\n", r.Project, r.Auth != "", r.Raw)
	}
	// Acks are written after the fakes answer: wait until both show.
	var status []byte
	for {
		status, err = d.call(wctx, http.MethodGet, "/api/v1/push/"+res.Results[0].ID, "", http.StatusOK)
		if err != nil {
			return err
		}
		var st push.Status
		if json.Unmarshal(status, &st) == nil && st.States[queue.StateDelivered] == 2 {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("jobs not delivered in time: %s", status)
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "\nGET /api/v1/push/%s\n-> 200 %s\n", res.Results[0].ID, status)
	return nil
}

// demo holds the in-process fakes and gateway pieces.
type demo struct {
	apns   *fake.APNs
	fcm    *fake.FCM
	url    string
	key    string
	closes []func()
}

func (d *demo) close() {
	for i := len(d.closes) - 1; i >= 0; i-- {
		d.closes[i]()
	}
}

// startDemo builds the pieces the way serve does, with the providers
// pointed at the fakes: bbolt, queue, registry, providers, push service
// and the publisher API on a loopback port.
func startDemo(ctx context.Context, dir string, log *slog.Logger) (_ *demo, err error) {
	d := &demo{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.apns, err = fake.NewAPNs(fake.APNsOptions{}); err != nil {
		return nil, err
	}
	d.closes = append(d.closes, d.apns.Close)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		return nil, err
	}
	d.apns.AddKey("DEMOKEY123", "DEMOTEAM12", pub)
	if d.fcm, err = fake.NewFCM(fake.FCMOptions{}); err != nil {
		return nil, err
	}
	d.closes = append(d.closes, d.fcm.Close)
	sa, err := d.fcm.ServiceAccountJSON("demo-project")
	if err != nil {
		return nil, err
	}
	saFile := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		return nil, err
	}

	db, err := bbolt.Open(filepath.Join(dir, "pushpull.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() { db.Close() })
	q, err := queue.Open(db, queue.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() { q.Close() })
	reg, err := devices.Open(db, devices.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() { reg.Close() })

	pool := x509.NewCertPool()
	pool.AddCert(d.apns.Certificate())
	ap, err := apns.New(apns.Options{
		Apps:          []apns.App{{ID: "demo-ios", Topic: "com.example.demo", Key: keyPEM, KeyID: "DEMOKEY123", TeamID: "DEMOTEAM12"}},
		ProductionURL: d.apns.URL(), SandboxURL: d.apns.URL(), RootCAs: pool, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() { ap.Close() })
	fp, err := fcm.New(ctx, fcm.Options{
		Apps: []fcm.App{{ID: "demo-android", CredentialsFile: saFile}}, Endpoint: d.fcm.URL() + "/v1", Logger: log,
	})
	if err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() { fp.Close() })

	svc, err := push.New(q, reg, []providers.Provider{ap, fp}, push.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(); err != nil {
		return nil, err
	}
	d.closes = append(d.closes, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Stop(sctx)
	})

	var k [24]byte
	_, _ = rand.Read(k[:])
	d.key = hex.EncodeToString(k[:])
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = apierr.Handler(log, api.MapError)
	g := e.Group("/api/v1", api.RequireKey(api.NewKeys([]string{d.key})))
	(&api.Server{Queue: q, Devices: reg, Logger: log}).Register(g)
	api.RegisterPush(g, svc, api.DefaultLimits, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo API server", "err", err)
		}
	}()
	d.closes = append(d.closes, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	})
	d.url = "http://" + ln.Addr().String()
	return d, nil
}

// call sends an authenticated API request and returns the body when the
// status is one of want.
func (d *demo) call(ctx context.Context, method, path, body string, want ...int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if res.StatusCode == w {
			return bytes.TrimSpace(raw), nil
		}
	}
	return nil, fmt.Errorf("%s %s: %s %s", method, path, res.Status, raw)
}

func compactJSON(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}
