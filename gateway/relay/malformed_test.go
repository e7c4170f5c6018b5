package relay

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func appleRaw(cmd byte, tokLen uint16, tok []byte, plen uint16, payload string) string {
	b := []byte{cmd, 0, 0, 0, 1, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, tokLen)
	b = append(b, tok...)
	b = binary.BigEndian.AppendUint16(b, plen)
	b = append(b, payload...)
	return base64.StdEncoding.EncodeToString(b)
}

func wrapRaw(head, body string) string {
	return base64.StdEncoding.EncodeToString([]byte(head + "\r\n\r\n" + body))
}

func TestMalformedFramesSkipped(t *testing.T) {
	t.Parallel()
	tok := make([]byte, 32)
	okPayload := `{"aps":{"alert":{"body":"b","title":"t"}}}`
	good := appleRaw(1, 32, tok, uint16(len(okPayload)), okPayload)
	padded := good
	for sp := " "; !strings.HasSuffix(padded, "="); sp += " " {
		padded = appleRaw(1, 32, tok, uint16(len(okPayload+sp)), okPayload+sp)
	}
	cases := []struct {
		name   string
		body   string
		reason Reason
	}{
		{"bad base64", ";2;tkey=A;@@@@", ReasonBadBase64},
		{"base64 without padding", ";2;tkey=A;" + strings.TrimRight(padded, "="), ReasonBadBase64},
		{"frame before mode", ";tkey=A;" + good, ReasonNoMode},
		{"frame without tkey", ";2;" + good, ReasonNoApp},
		{"unknown mode", ";9;tkey=A;" + good, ReasonUnknownMode},
		{"huge mode number", ";99999999999999999999;tkey=A;" + good, ReasonUnknownMode},
		{"apple header cut", ";2;tkey=A;" + base64.StdEncoding.EncodeToString([]byte{1, 0, 0}), ReasonTruncated},
		{"apple token cut", ";2;tkey=A;" + appleRaw(1, 32, tok[:10], 0, ""), ReasonTruncated},
		{"apple payload cut", ";2;tkey=A;" + appleRaw(1, 32, tok, 100, okPayload), ReasonTruncated},
		{"apple bytes after payload", ";2;tkey=A;" + appleRaw(1, 32, tok, 5, okPayload), ReasonLengthMismatch},
		// A 62-character token packs to 31 bytes: the payload length is
		// then read one byte late.
		{"apple short token packed", ";2;tkey=A;" + appleRaw(1, 32, tok[:31], uint16(len(okPayload)), okPayload), ReasonLengthMismatch},
		{"apple huge payload length", ";2;tkey=A;" + appleRaw(1, 32, tok, 60000, okPayload), ReasonLengthMismatch},
		{"apple command 2", ";2;tkey=A;" + appleRaw(2, 32, tok, uint16(len(okPayload)), okPayload), ReasonBadCommand},
		{"apple token length 64", ";2;tkey=A;" + appleRaw(1, 64, tok, uint16(len(okPayload)), okPayload), ReasonBadTokenLength},
		{"apple payload not json", ";2;tkey=A;" + appleRaw(1, 32, tok, 3, "{{{"), ReasonBadJSON},
		{"apple payload without aps", ";2;tkey=A;" + appleRaw(1, 32, tok, 2, "{}"), ReasonBadJSON},
		{"apple alert wrong type", ";2;tkey=A;" + appleRaw(1, 32, tok, 20, `{"aps":{"alert":17}}`), ReasonBadJSON},
		{"wrapper missing", ";3;tkey=A;" + base64.StdEncoding.EncodeToString([]byte(`{"data":{}}`)), ReasonBadWrapper},
		{"wrapper no length", ";3;tkey=A;" + wrapRaw("Content-type: application/json", "{}"), ReasonBadWrapper},
		{"wrapper wrong type", ";3;tkey=A;" + wrapRaw("Content-type: text/html\r\nContent-length: 2", "{}"), ReasonBadWrapper},
		{"wrapper bad length", ";3;tkey=A;" + wrapRaw("Content-type: application/json\r\nContent-length: x", "{}"), ReasonBadWrapper},
		{"wrapper body short", ";3;tkey=A;" + wrapRaw("Content-type: application/json\r\nContent-length: 9", "{}"), ReasonTruncated},
		{"wrapper body long", ";3;tkey=A;" + wrapRaw("Content-type: application/json\r\nContent-length: 1", "{}"), ReasonLengthMismatch},
		{"empty payload (trim failed)", ";7;tkey=A;" + wrapRaw("Content-type: application/json\r\nContent-length: 0", ""), ReasonBadJSON},
		{"google no token", ";3;tkey=A;" + wrap(`{"data":{"contentText":"x"},"registration_ids":[]}`), ReasonNoToken},
		{"google data not object", ";3;tkey=A;" + wrap(`{"data":[1],"registration_ids":["t"]}`), ReasonBadJSON},
		{"fcm no message", ";7;tkey=A;" + wrap(`{"msg":{}}`), ReasonBadJSON},
		{"fcm bad ttl", ";7;tkey=A;" + wrap(`{"message":{"data":{},"android":{"ttl":"soon"},"token":"t"}}`), ReasonBadJSON},
		{"fcm empty token", ";7;tkey=A;" + wrap(`{"message":{"data":{},"token":""}}`), ReasonNoToken},
		{"huawei data not json", ";6;tkey=A;" + wrap(`{"message":{"data":"nope","token":["t"]}}`), ReasonBadJSON},
		{"huawei token not list", ";6;tkey=A;" + wrap(`{"message":{"data":"{}","token":"t"}}`), ReasonBadJSON},
		{"frame too large", ";2;tkey=A;" + strings.Repeat("A", 70000), ReasonFrameTooLarge},
	}
	p := newTestParser(t, Options{})
	for _, c := range cases {
		b := p.Parse(c.body)
		if len(b.Frames) != 0 || b.SkipCounts[c.reason] != 1 || b.Skips() != 1 || len(b.Skipped) != 1 || b.Skipped[0].Reason != c.reason {
			t.Errorf("%s: frames %d, skips %v", c.name, len(b.Frames), b.SkipCounts)
		}
	}
	// The good frame passes under the same headers, and a bad frame does
	// not stop the ones after it.
	b := p.Parse(";2;tkey=A;@@;" + good + ";;" + good)
	if len(b.Frames) != 2 || b.Skips() != 1 || b.Empty != 2 {
		t.Fatalf("mixed: frames %d skips %v empty %d", len(b.Frames), b.SkipCounts, b.Empty)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tok := make([]byte, 32)
	payload := `{"aps":{"content-available":1}}`
	good := appleRaw(1, 32, tok, uint16(len(payload)), payload)
	p := newTestParser(t, Options{MaxFrames: 2, MaxSkipDetails: 1})
	b := p.Parse(";2;tkey=A;" + strings.Repeat(good+";", 5) + "x;y")
	if len(b.Frames) != 2 || b.SkipCounts[ReasonTooManyFrames] != 5 || len(b.Skipped) != 1 {
		t.Fatalf("frames %d skips %v details %d", len(b.Frames), b.SkipCounts, len(b.Skipped))
	}
	for _, s := range []string{"", ";", ";;;", "tkey=", "h=", "2", "0;tkey=;h="} {
		if b := p.Parse(s); len(b.Frames) != 0 || b.Skips() != 0 {
			t.Errorf("%q: %+v", s, b)
		}
	}
	for _, o := range []Options{{MaxFrames: -1}, {MaxFrameBytes: -1}, {MaxSkipDetails: -1}} {
		if _, err := NewParser(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("NewParser(%+v) = %v", o, err)
		}
	}
}

func TestReadForm(t *testing.T) {
	t.Parallel()
	batch := ";2;tkey=Bitrix24;h=portal.tld;AQAAAAE+/w==;;x y"
	f, err := ReadForm(strings.NewReader(phpFormBody(batch)), 0)
	if err != nil || f.Action != "SendMessage" || f.MessageBody != batch {
		t.Fatalf("ReadForm = %+v, %v", f, err)
	}
	// RFC 1738 encoding as PHP writes it.
	if enc := phpFormBody("a+b/c=;"); enc != "Action=SendMessage&MessageBody=a%2Bb%2Fc%3D%3B" {
		t.Fatalf("php encoding %q", enc)
	}
	body := phpFormBody(batch)
	if _, err := ReadForm(strings.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("body of exactly the limit: %v", err)
	}
	if _, err := ReadForm(strings.NewReader(body), int64(len(body)-1)); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("body over the limit: %v", err)
	}
	// 20 MB: refused after reading the cap, not the whole body.
	huge := &countingReader{r: io.MultiReader(strings.NewReader("Action=SendMessage&MessageBody="),
		io.LimitReader(repeatReader('A'), 20<<20))}
	if _, err := ReadForm(huge, DefaultMaxBody); !errors.Is(err, ErrBodyTooLarge) || huge.n > DefaultMaxBody+1 {
		t.Errorf("20 MB body: %v after %d bytes", err, huge.n)
	}
	bad := []struct {
		body string
		err  error
	}{
		{"Action=Other&MessageBody=x", ErrWrongAction},
		{"MessageBody=x", ErrWrongAction},
		{"Action=SendMessage", ErrNoMessageBody},
		{"Action=SendMessage&MessageBody=", ErrNoMessageBody},
		{"Action=SendMessage&MessageBody=%zz", ErrMalformedForm},
		{"Act%zzion=SendMessage", ErrMalformedForm},
	}
	for _, c := range bad {
		if _, err := ReadForm(strings.NewReader(c.body), 0); !errors.Is(err, c.err) {
			t.Errorf("%q: %v, want %v", c.body, err, c.err)
		}
	}
	if f, err := ReadForm(strings.NewReader("x=1&Action=SendMessage&MessageBody=a&MessageBody=b"), 0); err != nil || f.MessageBody != "a" {
		t.Errorf("first field wins: %+v %v", f, err)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestKeys(t *testing.T) {
	t.Parallel()
	if got := LicenseKeyHash(""); got != "bd6dbd063f5ab7394879e3c08781cd72" {
		t.Errorf("demo hash = %s", got)
	}
	if LicenseKeyHash("demo") != LicenseKeyHash("") || LicenseKeyHash("XYZ-123") == LicenseKeyHash("") {
		t.Error("demo rule")
	}
	k := LicenseKeyHash("XYZ-123")
	if !KeyAllowed(strings.ToUpper(k), []string{"other", k}) || KeyAllowed(k, []string{"other"}) || KeyAllowed("", []string{""}) {
		t.Error("KeyAllowed")
	}
	if !strings.Contains(ReplyBody, "xml version=") {
		t.Error("site checker needs xml version=")
	}
}
