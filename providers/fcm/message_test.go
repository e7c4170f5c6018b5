package fcm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
)

func TestOverridesMergeLastAndDeep(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	n := &providers.Notification{
		Title: "t", Body: "b", Sound: "default", CollapseID: "c1",
		Data: json.RawMessage(`{"chat":17}`),
		FCM: json.RawMessage(`{
			"android": {"priority": "normal", "notification": {"channel_id": "chat", "sound": null}},
			"apns": {"headers": {"apns-priority": "5"}, "payload": {"aps": {"sound": "ping.caf"}, "custom": {"k": "v"}}},
			"data": {"extra": 5, "chat": "override"},
			"fcm_options": {"analytics_label": "campaign"}
		}`),
	}
	if res := p.Send(context.Background(), []providers.Message{msg("tok", n)}); res[0].Class != providers.Delivered {
		t.Fatalf("result %+v", res[0])
	}
	m := onlyRequest(t, f).Message
	eq(t, m, "normal", "android", "priority") // replaced
	eq(t, m, "c1", "android", "collapse_key") // kept beside it
	eq(t, m, "chat", "android", "notification", "channel_id")
	eq(t, m, "c1", "android", "notification", "tag")  // kept
	absent(t, m, "android", "notification", "sound")  // null deletes
	eq(t, m, "5", "apns", "headers", "apns-priority") // replaced
	eq(t, m, "alert", "apns", "headers", "apns-push-type")
	eq(t, m, "ping.caf", "apns", "payload", "aps", "sound")
	eq(t, m, "t", "apns", "payload", "aps", "alert", "title")
	eq(t, m, "v", "apns", "payload", "custom", "k")
	eq(t, m, "5", "data", "extra") // stringified
	eq(t, m, "override", "data", "chat")
	eq(t, m, "campaign", "fcm_options", "analytics_label")
	eq(t, m, "tok", "token")
}

func TestBadOverridesAreRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	cases := map[string]string{
		"not-object":  `[1,2]`,
		"target":      `{"token": "someone-else"}`,
		"unsupported": `{"android": {"no_such_field": 1}}`,
		"wrong-type":  `{"android": {"priority": 7}}`,
		"reserved":    `{"data": {"google.x": "1"}}`,
		"header-crlf": `{"webpush": {"headers": {"TTL": "60\r\nX-Evil: 1"}}}`,
		"header-name": `{"apns": {"headers": {"apns priority": "10"}}}`,
		"header-type": `{"apns": {"headers": {"apns-priority": 10}}}`,
	}
	var batch []providers.Message
	var names []string
	for name, raw := range cases {
		names = append(names, name)
		batch = append(batch, msg("tok-"+name, &providers.Notification{Body: "b", FCM: json.RawMessage(raw)}))
	}
	res := p.Send(context.Background(), batch)
	for i, r := range res {
		if r.Class != providers.Rejected || r.Reason != fcm.ReasonInvalid || !errors.Is(r.Err, fcm.ErrInvalidMessage) {
			t.Errorf("%s: %+v, want rejected invalid_message", names[i], r)
		}
	}
	if f.Requests() != 0 {
		t.Errorf("fake got %d requests", f.Requests())
	}
}

func TestInvalidNotificationsAreRejected(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	bad := []*providers.Notification{
		nil,
		{Body: "b", PushType: providers.PushVoIP},
		{Body: "b", PushType: "loud"},
		{Body: "b", Priority: "urgent"},
		{Body: "b", Data: json.RawMessage(`"not an object"`)},
		{Body: "b", Data: json.RawMessage(`{"from":"x"}`)},
	}
	batch := make([]providers.Message, len(bad))
	for i, n := range bad {
		batch[i] = msg("tok", n)
	}
	for i, r := range p.Send(context.Background(), batch) {
		if r.Class != providers.Rejected || !errors.Is(r.Err, fcm.ErrInvalidMessage) {
			t.Errorf("notification %d: %+v, want rejected", i, r)
		}
	}
	if f.Requests() != 0 {
		t.Errorf("fake got %d requests", f.Requests())
	}
}

func TestPayloadSize(t *testing.T) {
	t.Parallel()
	n := &providers.Notification{Body: "not counted", Data: json.RawMessage(`{"ab":"cde","n":17}`)}
	if size, err := fcm.PayloadSize(n); err != nil || size != len("ab")+len("cde")+len("n")+len("17") {
		t.Errorf("PayloadSize = %d, %v", size, err)
	}
	n.FCM = json.RawMessage(`{"data":{"x":"yy"}}`)
	if size, _ := fcm.PayloadSize(n); size != 11 {
		t.Errorf("PayloadSize with override data = %d, want 11", size)
	}

	atLimit := &providers.Notification{Data: json.RawMessage(`{"k":"` + strings.Repeat("v", fcm.MaxDataBytes-1) + `"}`)}
	if err := fcm.CheckPayload(atLimit); err != nil {
		t.Errorf("payload of exactly %d bytes: %v", fcm.MaxDataBytes, err)
	}
	over := &providers.Notification{Data: json.RawMessage(`{"k":"` + strings.Repeat("v", fcm.MaxDataBytes) + `"}`)}
	if err := fcm.CheckPayload(over); !errors.Is(err, fcm.ErrPayloadTooLarge) {
		t.Errorf("oversized payload: %v, want ErrPayloadTooLarge", err)
	}
	if err := fcm.CheckPayload(&providers.Notification{PushType: providers.PushVoIP}); !errors.Is(err, fcm.ErrInvalidMessage) {
		t.Errorf("voip: %v, want ErrInvalidMessage", err)
	}
}

func TestOptionsValidateNamesTheField(t *testing.T) {
	t.Parallel()
	ok := fcm.App{ID: "a", CredentialsJSON: []byte(`{}`)}
	cases := []struct {
		field string
		o     fcm.Options
	}{
		{"Apps", fcm.Options{}},
		{"Apps[0].ID", fcm.Options{Apps: []fcm.App{{CredentialsJSON: []byte(`{}`)}}}},
		{"Apps[1].ID", fcm.Options{Apps: []fcm.App{ok, ok}}},
		{"Apps[0].CredentialsFile", fcm.Options{Apps: []fcm.App{{ID: "a"}}}},
		{"Apps[0].CredentialsFile", fcm.Options{Apps: []fcm.App{{ID: "a", CredentialsFile: "f", CredentialsJSON: []byte(`{}`)}}}},
		{"Apps[0].ProjectID", fcm.Options{Apps: []fcm.App{{ID: "a"}}, HTTPClient: &http.Client{}}},
		{"Endpoint", fcm.Options{Apps: []fcm.App{ok}, Endpoint: "localhost:80"}},
		{"Concurrency", fcm.Options{Apps: []fcm.App{ok}, Concurrency: -1}},
		{"Timeout", fcm.Options{Apps: []fcm.App{ok}, Timeout: -1}},
	}
	for _, c := range cases {
		err := c.o.Validate()
		if !errors.Is(err, fcm.ErrInvalidOptions) || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("want error naming %s, got %v", c.field, err)
		}
	}
	if err := (fcm.Options{Apps: []fcm.App{ok}}).Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestNewFailsOnUnusableCredentials(t *testing.T) {
	t.Parallel()
	_, err := fcm.New(context.Background(), fcm.Options{Apps: []fcm.App{{ID: "a", CredentialsFile: "/nonexistent/sa.json"}}})
	if err == nil || !strings.Contains(err.Error(), "Apps[0]") {
		t.Errorf("New = %v, want an error naming Apps[0]", err)
	}
	_, err = fcm.New(context.Background(), fcm.Options{Apps: []fcm.App{{ID: "a", CredentialsJSON: []byte(`{"type":"service_account"}`)}}})
	if !errors.Is(err, fcm.ErrInvalidOptions) {
		t.Errorf("credentials without project: %v, want ErrInvalidOptions", err)
	}
	_, err = fcm.New(context.Background(), fcm.Options{Apps: []fcm.App{{ID: "a", CredentialsJSON: []byte(`{"type":"external_account","project_id":"p"}`)}}})
	if !errors.Is(err, fcm.ErrInvalidOptions) {
		t.Errorf("external_account credentials: %v, want ErrInvalidOptions", err)
	}
}
