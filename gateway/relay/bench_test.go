package relay

import (
	"strings"
	"testing"
)

// benchBody is a 24.500 batch of 100 Apple and 100 FCM v1 frames for
// distinct devices of distinct users: one push_message_per_hit chunk.
func benchBody() string {
	now := testNow.Unix()
	var apple, fcm []string
	for i := range 100 {
		apple = append(apple, newMessage(apnsToken(i), i+1, chatMsg(i, "Hello there, how are you?"), false).appleFrame(now, false))
		fcm = append(fcm, newMessage("fcm-token-"+strings.Repeat("x", 140)+string(rune('a'+i%26)), 1, chatMsg(i, "Hello"), false).fcmFrame())
	}
	return batch24(2, "portal.tld", []appGroup{{"Bitrix24", apple}}) + batch24(7, "portal.tld", []appGroup{{"Bitrix24", fcm}})
}

func BenchmarkParseBatch(b *testing.B) {
	body := benchBody()
	p := newTestParser(b, Options{})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if r := p.Parse(body); len(r.Frames) != 200 {
			b.Fatalf("%d frames", len(r.Frames))
		}
	}
}

func BenchmarkReadForm(b *testing.B) {
	form := phpFormBody(benchBody())
	b.ReportAllocs()
	b.SetBytes(int64(len(form)))
	for b.Loop() {
		if _, err := ReadForm(strings.NewReader(form), 0); err != nil {
			b.Fatal(err)
		}
	}
}
