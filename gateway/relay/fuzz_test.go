package relay

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// seedBatches are batches built exactly as each module version builds
// them, plus the broken shapes the tests know about.
func seedBatches() map[string]string {
	now := testNow.Unix()
	chat := newMessage(apnsToken(1), 42, chatMsg(7, "Привет <b>&</b>"), false)
	silent := newMessage(apnsToken(2), 43, pushMsg{UserID: 7, Badge: 0}, false)
	voip := newMessage(apnsToken(3), 44, pushMsg{UserID: 7, Message: "Call", AdvancedParams: kv{{"isVoip", true}}}, false)
	android := newMessage("fcm:APA91b-token", 1, chatMsg(7, "android"), false)
	hw := newMessage("0864-huawei-token", 1, chatMsg(7, "huawei"), false)
	old := newMessage(apnsToken(4), 45, chatMsg(7, "old"), true)
	return map[string]string{
		"v24500": batch24(2, "portal.tld", []appGroup{{"Bitrix24", []string{chat.appleFrame(now, false)}}, {"MyApp", []string{silent.appleFrame(now, false)}}}) +
			batch24(1, "portal.tld", []appGroup{{"Bitrix24", []string{silent.appleFrame(now, false)}}}) +
			batch24(5, "portal.tld", []appGroup{{"Bitrix24", []string{voip.appleFrame(now, true)}}}) +
			batch24(7, "portal.tld", []appGroup{{"Bitrix24", []string{android.fcmFrame()}}}) +
			batch24(3, "portal.tld", []appGroup{{"Bitrix24", []string{android.googleFrame()}}}) +
			batch24(6, "portal.tld", []appGroup{{"Bitrix24", []string{hw.huaweiFrame()}}}),
		"v23100": batchLegacy(2, "portal.tld", []appGroup{{"Bitrix24", []string{chat.appleFrame(now, false), silent.appleFrame(now, false)}}}) +
			batchLegacy(3, "portal.tld", []appGroup{{"Bitrix24", []string{android.googleFrame(), "", android.googleFrame()}}}) +
			batchLegacy(6, "portal.tld", []appGroup{{"Bitrix24", []string{hw.huaweiFrame()}}}),
		"v23100_multiapp": batchLegacy(2, "portal.tld", []appGroup{{"A", []string{chat.appleFrame(now, false)}}, {"B", []string{silent.appleFrame(now, false)}}}),
		"v20500":          batchLegacy(2, "", []appGroup{{"Bitrix24", []string{old.appleFrame(now, false)}}}) + batchLegacy(3, "", []appGroup{{"Bitrix24", []string{newMessage("g", 1, chatMsg(7, "x"), true).googleFrame()}}}),
		"broken":          ";2;tkey=A;AQAAAAEAAAAAACA=;9;tkey=B;xx;3;tkey=C;" + wrapRaw("Content-type: application/json\r\nContent-length: 99", "{}") + ";;",
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzParseBatch when
// RELAY_WRITE_SEEDS=1 (the files are committed; this keeps them honest).
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseBatch")
	for name, body := range seedBatches() {
		want := "go test fuzz v1\nstring(" + strconv.Quote(body) + ")\n"
		path := filepath.Join(dir, name)
		if os.Getenv("RELAY_WRITE_SEEDS") == "1" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with RELAY_WRITE_SEEDS=1)", err)
		}
		// Frames depend only on testNow and fixed ids, so the seeds are
		// stable; a difference means the builders changed.
		if string(got) != want {
			t.Errorf("%s is stale: run with RELAY_WRITE_SEEDS=1", path)
		}
	}
}

func FuzzParseBatch(f *testing.F) {
	for _, body := range seedBatches() {
		f.Add(body)
	}
	p := newTestParser(f, Options{MaxFrames: 1000})
	f.Fuzz(func(t *testing.T, body string) {
		b := p.Parse(body)
		if b.Segments != strings.Count(body, ";")+1 {
			t.Fatalf("segments %d for %d separators", b.Segments, strings.Count(body, ";"))
		}
		frameSegs := map[int]bool{}
		for _, fr := range b.Frames {
			if fr.Notification == nil || fr.Token == "" || fr.AppKey == "" || !fr.Mode.known() || fr.Platform == "" {
				t.Fatalf("incomplete frame %+v", fr)
			}
			frameSegs[fr.Segment] = true
		}
		if len(frameSegs)+b.Skips()+b.Empty+b.Headers < b.Segments {
			t.Fatalf("segments unaccounted: %d frames, %d skips, %d empty, %d headers of %d",
				len(frameSegs), b.Skips(), b.Empty, b.Headers, b.Segments)
		}
		if b2 := p.Parse(body); len(b2.Frames) != len(b.Frames) || b2.Skips() != b.Skips() {
			t.Fatal("parse is not deterministic")
		}
		// The body also survives the form reader.
		form, err := ReadForm(strings.NewReader(phpFormBody(body)), 0)
		if body != "" && (err != nil || form.MessageBody != body) {
			t.Fatalf("form round trip: %v", err)
		}
	})
}
