package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestParser(t testing.TB, o Options) *Parser {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	p, err := NewParser(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apnsToken(n int) string { return fmt.Sprintf("%064x", n+0xabc000) }

func intp(i int) *int { return &i }

// chatMsg is a typical im notification as the im module queues it.
func chatMsg(user int, text string) pushMsg {
	return pushMsg{UserID: user, Title: "Anna <Admin>", Message: text, Badge: 3, Category: "IM_MESS",
		Expiry: intp(0), Params: kv{{"CHAT_ID", 17}, {"path", "/online/?IM_DIALOG=1"}},
		AdvancedParams: kv{{"id", "IM_MESS_1"}, {"extra", kv{{"server_time", "2026-03-01T12:00:00+00:00"},
			{"server_time_unix", 1772366400}}}, {"senderName", "Anna"}, {"senderMessage", text}, {"avatarUrl", "https://p.tld/a.png"}}}
}

func TestParse24AllModes(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	m1 := newMessage(apnsToken(1), 77, chatMsg(5, "Hi & bye"), false)
	m2 := newMessage(apnsToken(2), 78, chatMsg(5, "Hi & bye"), false)
	mB := newMessage(apnsToken(3), 79, pushMsg{UserID: 6, Message: "For B", Badge: -1, Expiry: intp(60)}, false)
	sandbox := newMessage(apnsToken(4), 80, pushMsg{UserID: 5, Badge: 0, Params: "raw-params"}, false)
	voip := newMessage(apnsToken(5), 81, pushMsg{UserID: 5, Message: "Call", Badge: 1,
		AdvancedParams: kv{{"isVoip", true}, {"senderName", "Bob"}}}, false)
	fcm := newMessage("fcm-token-1", 1, pushMsg{UserID: 5, Message: "Привет", Badge: 2, Params: kv{{"a", "b"}}}, false)
	google := newMessage("gcm-token-1", 1, chatMsg(5, "legacy"), false)
	hw := newMessage("hw-token-1", 1, chatMsg(5, "huawei"), false)

	body := batch24(2, "portal.tld", []appGroup{{"Bitrix24", []string{m1.appleFrame(now, false), m2.appleFrame(now, false)}},
		{"MyApp", []string{mB.appleFrame(now, false)}}}) +
		batch24(1, "portal.tld", []appGroup{{"Bitrix24", []string{sandbox.appleFrame(now, false)}}}) +
		batch24(5, "portal.tld", []appGroup{{"Bitrix24", []string{voip.appleFrame(now, true)}}}) +
		batch24(7, "portal.tld", []appGroup{{"Bitrix24", []string{fcm.fcmFrame()}}}) +
		batch24(3, "portal.tld", []appGroup{{"Bitrix24", []string{google.googleFrame()}}}) +
		batch24(6, "portal.tld", []appGroup{{"Bitrix24", []string{hw.huaweiFrame()}}})

	b := newTestParser(t, Options{}).Parse(body)
	if b.Layout != Layout24 || b.Skips() != 0 || b.Ambiguous != 0 || len(b.Frames) != 8 {
		t.Fatalf("layout %v, skips %v, ambiguous %d, frames %d", b.Layout, b.SkipCounts, b.Ambiguous, len(b.Frames))
	}
	if b.Empty != 1 { // the leading ';'
		t.Errorf("empty segments = %d", b.Empty)
	}
	type head struct {
		mode      Mode
		app, host string
		platform  string
		sandbox   bool
		voip      bool
		token     string
	}
	want := []head{
		{ModeAPNsProduction, "Bitrix24", "portal.tld", "apns", false, false, apnsToken(1)},
		{ModeAPNsProduction, "Bitrix24", "portal.tld", "apns", false, false, apnsToken(2)},
		{ModeAPNsProduction, "MyApp", "portal.tld", "apns", false, false, apnsToken(3)},
		{ModeAPNsSandbox, "Bitrix24", "portal.tld", "apns", true, false, apnsToken(4)},
		{ModeVoIPProduction, "Bitrix24", "portal.tld", "apns", false, true, apnsToken(5)},
		{ModeFCMv1, "Bitrix24", "portal.tld", "fcm", false, false, "fcm-token-1"},
		{ModeGoogleLegacy, "Bitrix24", "portal.tld", "fcm", false, false, "gcm-token-1"},
		{ModeHuawei, "Bitrix24", "portal.tld", "hms", false, false, "hw-token-1"},
	}
	for i, f := range b.Frames {
		got := head{f.Mode, f.AppKey, f.Host, f.Platform, f.Sandbox, f.VoIP, f.Token}
		if got != want[i] {
			t.Errorf("frame %d = %+v, want %+v", i, got, want[i])
		}
	}
	if b.Frames[0].Notification != b.Frames[1].Notification {
		t.Error("identical Apple payloads do not share a notification")
	}
	if b.Frames[0].Identifier != 77 || !b.Frames[0].ExpiresAt.IsZero() {
		t.Errorf("identifier %d, expiry %v", b.Frames[0].Identifier, b.Frames[0].ExpiresAt)
	}
	if got := b.Frames[2].ExpiresAt; !got.Equal(testNow.Add(time.Minute)) {
		t.Errorf("expiry = %v", got)
	}
	// senderMessage empties MESSAGE (setFromArray): the text travels in
	// messageParams only.
	if b.Frames[6].Title != "Anna <Admin>" || b.Frames[6].Body != "" {
		t.Errorf("google summary %q %q", b.Frames[6].Title, b.Frames[6].Body)
	}
}

func dataOf(t *testing.T, n *providers.Notification) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(n.Data, &m); err != nil {
		t.Fatalf("data %s: %v", n.Data, err)
	}
	return m
}

func TestAppleConversion(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	p := newTestParser(t, Options{})
	m := newMessage(apnsToken(1), 5, chatMsg(9, "See <b>this</b> & 'that'"), false)
	m.expiry = 3600
	b := p.Parse(batch24(2, "p.tld", []appGroup{{"Bitrix24", []string{m.appleFrame(now, false)}}}))
	if len(b.Frames) != 1 {
		t.Fatalf("skips %v", b.Skipped)
	}
	n := b.Frames[0].Notification
	if n.Title != "Anna" || n.Body != "See <b>this</b> & 'that'" {
		t.Errorf("alert = %q / %q (sender keys must win)", n.Title, n.Body)
	}
	if n.Badge == nil || *n.Badge != 3 || n.Sound != "" || n.Category != "IM_MESS" || !n.MutableContent ||
		n.ContentAvailable || n.PushType != providers.PushAlert || n.Priority != providers.PriorityHigh {
		t.Errorf("aps fields: %+v", n)
	}
	if !n.ExpiresAt.Equal(testNow.Add(time.Hour)) || !b.Frames[0].ExpiresAt.Equal(n.ExpiresAt) {
		t.Errorf("expiry %v", n.ExpiresAt)
	}
	d := dataOf(t, n)
	if d["params"] != `{"CHAT_ID":17,"path":"\/online\/?IM_DIALOG=1"}` {
		t.Errorf("params = %q (must stay the module's JSON string)", d["params"])
	}
	extra, _ := d["extra"].(map[string]any)
	if d["id"] != "IM_MESS_1" || extra["server_time_unix"] != float64(1772366400) || d["avatarUrl"] != "https://p.tld/a.png" ||
		d["target"] != md5hex("9"+serverUniqID) {
		t.Errorf("custom keys = %v", d)
	}
	for _, k := range []string{"senderName", "senderMessage", "aps"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s kept in data", k)
		}
	}

	// Silent push: no text, content-available, priority 5, sound only with text.
	s := newMessage(apnsToken(2), 6, pushMsg{UserID: 1, Sound: "x.aif", Badge: 0,
		AdvancedParams: kv{{"notificationsToCancel", []any{"IM_MESS_1"}}}}, false)
	b = p.Parse(batch24(1, "", []appGroup{{"App_bxdev", []string{s.appleFrame(now, false)}}}))
	n = b.Frames[0].Notification
	if n.PushType != providers.PushBackground || !n.ContentAvailable || n.Priority != providers.PriorityNormal ||
		n.Sound != "" || n.Title != "" || n.Body != "" || *n.Badge != 0 || !b.Frames[0].Sandbox || b.Frames[0].Host != "" {
		t.Errorf("silent: %+v frame %+v", n, b.Frames[0])
	}
	if d := dataOf(t, n); !reflect.DeepEqual(d["notificationsToCancel"], []any{"IM_MESS_1"}) {
		t.Errorf("notificationsToCancel = %v", d["notificationsToCancel"])
	}

	// VoIP: alert is a plain string, sender keys stay.
	v := newMessage(apnsToken(3), 7, pushMsg{UserID: 1, Message: "Incoming call", Sound: "ring",
		AdvancedParams: kv{{"senderName", "Bob"}, {"isVoip", true}}}, false)
	b = p.Parse(batch24(4, "h", []appGroup{{"App", []string{v.appleFrame(now, true)}}}))
	n = b.Frames[0].Notification
	if n.PushType != providers.PushVoIP || n.Body != "Incoming call" || n.Title != "" || n.Sound != "ring" ||
		!b.Frames[0].VoIP || !b.Frames[0].Sandbox {
		t.Errorf("voip: %+v", n)
	}
	if d := dataOf(t, n); d["senderName"] != "Bob" || d["isVoip"] != true {
		t.Errorf("voip data = %v", d)
	}
}

func TestAndroidConversions(t *testing.T) {
	t.Parallel()
	p := newTestParser(t, Options{})
	mk := func() *message {
		m := newMessage("tok", 1, pushMsg{UserID: 3, Message: "Hello \"you\"", Badge: 4, Sound: "s",
			Params: kv{{"x", 1}}, AdvancedParams: kv{{"id", "T1"}}}, false)
		m.expiry = 600
		return m
	}
	// The module's own escaping (JSON_HEX_QUOT) survives: these are the
	// bytes the app would have got through the vendor relay.
	wantParams := `{"params":"{\u0022x\u0022:1}","id":"T1","target":"` + md5hex("3"+serverUniqID) + `"}`
	check := func(name string, mode int, frame string) {
		b := p.Parse(batch24(mode, "h", []appGroup{{"App", []string{frame}}}))
		if len(b.Frames) != 1 {
			t.Fatalf("%s: %v", name, b.Skipped)
		}
		f := b.Frames[0]
		n := f.Notification
		if n.Title != "" || n.Body != "" || f.Title != "" || f.Body != `Hello "you"` || n.Priority != providers.PriorityHigh {
			t.Errorf("%s: notification %+v frame %q/%q", name, n, f.Title, f.Body)
		}
		if !f.ExpiresAt.Equal(testNow.Add(10*time.Minute)) || !n.ExpiresAt.Equal(f.ExpiresAt) {
			t.Errorf("%s: expiry %v", name, f.ExpiresAt)
		}
		d := dataOf(t, n)
		if mode == 6 {
			// Huawei: the module's data string, kept byte for byte.
			var msg struct {
				Message struct{ Data string } `json:"message"`
			}
			raw := decodeWrapped(t, frame)
			if err := json.Unmarshal(raw, &msg); err != nil {
				t.Fatal(err)
			}
			if string(n.Data) != msg.Message.Data {
				t.Errorf("huawei data\n got %s\nwant %s", n.Data, msg.Message.Data)
			}
			if d["badge"] != float64(4) || d["contentTitle"] != nil {
				t.Errorf("huawei data = %v", d)
			}
			return
		}
		want := map[string]any{"contentTitle": "", "contentText": `Hello "you"`, "badge": "4",
			"messageParams": wantParams, "category": "", "sound": "s"}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("%s: data\n got %v\nwant %v", name, d, want)
		}
	}
	check("google legacy", 3, mk().googleFrame())
	check("fcm v1", 7, mk().fcmFrame())
	check("huawei", 6, mk().huaweiFrame())
}

func decodeWrapped(t *testing.T, frame string) []byte {
	t.Helper()
	raw, reason, _ := unwrap(mustB64(t, frame))
	if reason != "" {
		t.Fatal(reason)
	}
	return raw
}

func TestLegacyLayoutsAndMisattribution(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	p := newTestParser(t, Options{})
	a1 := newMessage(apnsToken(1), 1, chatMsg(1, "to A"), false).appleFrame(now, false)
	a2 := newMessage(apnsToken(2), 2, chatMsg(1, "to A too"), false).appleFrame(now, false)
	b1 := newMessage(apnsToken(3), 3, chatMsg(2, "to B"), false).appleFrame(now, false)

	// One app, 23.100: ";2;;tkey=Bitrix24;h=portal.tld;F1;F2".
	body := batchLegacy(2, "portal.tld", []appGroup{{"Bitrix24", []string{a1, a2}}})
	if !strings.HasPrefix(body, ";2;;tkey=Bitrix24;h=portal.tld;") {
		t.Fatalf("builder: %.40s", body)
	}
	b := p.Parse(body)
	if b.Layout != LayoutLegacy || len(b.Frames) != 2 || b.Ambiguous != 0 || b.Frames[1].AppKey != "Bitrix24" {
		t.Fatalf("23.100: %+v", b)
	}

	// Two apps: the second header is prepended, both runs of frames follow
	// the first app's header.
	body = batchLegacy(2, "portal.tld", []appGroup{{"A", []string{a1, a2}}, {"B", []string{b1}}})
	if !strings.HasPrefix(body, ";2;;tkey=B;h=portal.tld;;tkey=A;h=portal.tld;") {
		t.Fatalf("builder: %.60s", body)
	}
	b = p.Parse(body)
	if len(b.Frames) != 3 || b.Ambiguous != 3 {
		t.Fatalf("multi-app: %d frames, %d ambiguous", len(b.Frames), b.Ambiguous)
	}
	for _, f := range b.Frames {
		if f.AppKey != "A" || !reflect.DeepEqual(f.AppCandidates, []string{"B", "A"}) {
			t.Errorf("frame %d: app %q candidates %v", f.Segment, f.AppKey, f.AppCandidates)
		}
	}
	only := func(apps ...string) func(string) bool {
		return func(k string) bool { return strings.Contains(strings.Join(apps, ","), k) && k != "" }
	}
	f := b.Frames[2]
	if app, ok := f.ResolveApp(only("B")); !ok || app != "B" {
		t.Errorf("only B configured: %q %v", app, ok)
	}
	if app, ok := f.ResolveApp(only("A", "B")); !ok || app != "A" {
		t.Errorf("both configured: %q %v (the portal's reading)", app, ok)
	}
	if _, ok := f.ResolveApp(only("C")); ok {
		t.Error("resolved to an unconfigured app")
	}

	// 20.5: no h=, and a frame that failed to build leaves an empty segment.
	g := newMessage("g", 1, chatMsg(1, "x"), true).googleFrame()
	body = batchLegacy(3, "", []appGroup{{"Bitrix24", []string{g, "", g}}})
	b = p.Parse(body)
	if b.Layout != Layout20 || len(b.Frames) != 2 || b.Frames[0].Host != "" || b.Empty != 3 {
		t.Fatalf("20.5: layout %v frames %d empty %d", b.Layout, len(b.Frames), b.Empty)
	}
	if d := dataOf(t, b.Frames[0].Notification); d["contentTitle"] != "Anna <Admin>" || d["contentText"] != "" || d["sound"] != "default" {
		t.Errorf("20.5 data = %v", d)
	}

	// Apple production then sandbox, 23.100: the mode resets the app.
	body = batchLegacy(2, "h", []appGroup{{"A", []string{a1}}}) + batchLegacy(1, "h", []appGroup{{"A", []string{b1}}})
	b = p.Parse(body)
	if len(b.Frames) != 2 || b.Ambiguous != 0 || b.Frames[0].Sandbox || !b.Frames[1].Sandbox {
		t.Fatalf("prod+sandbox: %+v", b.Frames)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	raw, err := b64(s)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSharedNotificationKeyIncludesExpiry(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	m := newMessage(apnsToken(1), 1, chatMsg(1, "x"), false)
	f1 := m.appleFrame(now, false)
	m.expiry = 100
	f2 := m.appleFrame(now, false)
	b := newTestParser(t, Options{}).Parse(batch24(2, "h", []appGroup{{"A", []string{f1, f2}}}))
	if len(b.Frames) != 2 || b.Frames[0].Notification == b.Frames[1].Notification {
		t.Fatal("frames with different expiry share a notification")
	}
	if !bytes.Equal(b.Frames[0].Notification.Data, b.Frames[1].Notification.Data) {
		t.Fatal("same payload, different data")
	}
}
