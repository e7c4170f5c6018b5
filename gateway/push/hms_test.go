package push

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/hms"
	"github.com/pushpull/pushpull/queue"
)

// TestHMSDeviceThroughTheService: a device registered with platform "hms"
// gets a normal notification through the real HMS provider (OAuth client
// credentials, v1 send) to the fake; a dead token there removes it.
func TestHMSDeviceThroughTheService(t *testing.T) {
	t.Parallel()
	quietLog := slog.New(slog.DiscardHandler)
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "hms.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.Open(db, queue.Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	f, err := fake.NewHMS(fake.HMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.AddClient("2002", "client-secret", "2002")
	f.Script("hw-dead", fake.HMSBehavior{Code: fake.HMSAllTokensInvalid})
	prov, err := hms.New(hms.Options{Endpoint: f.URL(), TokenURL: f.TokenURL(), HTTPClient: f.Client(),
		Apps: []hms.App{{ID: "huawei-app", ClientID: "2002", ClientSecret: "client-secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	svc, err := New(q, reg, []providers.Provider{prov}, Options{Logger: quietLog, MaxIdle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background())

	ctx := context.Background()
	for _, tok := range []string{"hw-live", "hw-dead"} {
		if _, err := reg.Register(ctx, devices.Device{User: "7", Platform: devices.PlatformHMS, AppID: "huawei-app", Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := svc.Push(ctx, []Request{{Users: []string{"7"}, Notification: providers.Notification{Title: "Hi", Body: "from the API"}}})
	if err != nil || res[0].Jobs != 2 {
		t.Fatalf("push: %+v %v", res, err)
	}
	waitFor(t, "both jobs settled", func() bool {
		st, err := svc.Status(ctx, res[0].ID)
		return err == nil && st.States[queue.StateDelivered]+st.States[queue.StateDropped] == 2
	})
	var got fake.HMSRequest
	for _, r := range f.Received() {
		if slices.Contains(r.Tokens, "hw-live") {
			got = r
		}
	}
	android, _ := got.Message["android"].(map[string]any)
	n, _ := android["notification"].(map[string]any)
	if n["title"] != "Hi" || n["body"] != "from the API" {
		t.Errorf("HMS message %v", got.Message)
	}
	ds, err := reg.ListByUser(ctx, "7")
	if err != nil || len(ds) != 1 || ds[0].Token != "hw-live" {
		t.Errorf("devices after the dead token: %+v %v", ds, err)
	}
}
