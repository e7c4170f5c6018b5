package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// Apple legacy "enhanced" frame: u8 command (1) | u32 identifier | u32
// expiry | u16 token length (32) | token | u16 payload length | payload.
const (
	appleCommand     = 1
	appleTokenLen    = 32
	appleHeaderLen   = 1 + 4 + 4 + 2
	appleMaxPayload  = 5120 // the module's limits are 2048 and 4096
	wrapperSeparator = "\r\n\r\n"
)

// decode turns one base64 segment into frames under the walker's mode.
func (w *walker) decode(s string) ([]Frame, Reason, string) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, ReasonBadBase64, err.Error()
	}
	switch w.mode {
	case ModeAPNsSandbox, ModeAPNsProduction, ModeVoIPSandbox, ModeVoIPProduction:
		f, reason, detail := w.decodeApple(raw)
		if reason != "" {
			return nil, reason, detail
		}
		return []Frame{f}, "", ""
	case ModeGoogleLegacy:
		body, reason, detail := unwrap(raw)
		if reason != "" {
			return nil, reason, detail
		}
		return w.decodeGoogleLegacy(body)
	case ModeFCMv1:
		body, reason, detail := unwrap(raw)
		if reason != "" {
			return nil, reason, detail
		}
		return w.decodeFCMv1(body)
	case ModeHuawei:
		body, reason, detail := unwrap(raw)
		if reason != "" {
			return nil, reason, detail
		}
		return w.decodeHuawei(body)
	}
	return nil, ReasonUnknownMode, w.mode.String()
}

func (w *walker) decodeApple(raw []byte) (Frame, Reason, string) {
	if len(raw) < appleHeaderLen {
		return Frame{}, ReasonTruncated, fmt.Sprintf("%d bytes, header needs %d", len(raw), appleHeaderLen)
	}
	if raw[0] != appleCommand {
		return Frame{}, ReasonBadCommand, fmt.Sprintf("command %d", raw[0])
	}
	id := binary.BigEndian.Uint32(raw[1:5])
	expiry := binary.BigEndian.Uint32(raw[5:9])
	if n := binary.BigEndian.Uint16(raw[9:11]); n != appleTokenLen {
		return Frame{}, ReasonBadTokenLength, fmt.Sprintf("token length %d", n)
	}
	rest := raw[appleHeaderLen:]
	if len(rest) < appleTokenLen+2 {
		return Frame{}, ReasonTruncated, "token or payload length cut"
	}
	token := hex.EncodeToString(rest[:appleTokenLen])
	plen := int(binary.BigEndian.Uint16(rest[appleTokenLen : appleTokenLen+2]))
	payload := rest[appleTokenLen+2:]
	switch {
	case plen > appleMaxPayload:
		return Frame{}, ReasonLengthMismatch, fmt.Sprintf("payload length %d over %d", plen, appleMaxPayload)
	case len(payload) < plen:
		return Frame{}, ReasonTruncated, fmt.Sprintf("payload %d of %d bytes", len(payload), plen)
	case len(payload) > plen:
		// A token that was not 64 hex characters packs to another length
		// under the same "32": the lengths no longer add up.
		return Frame{}, ReasonLengthMismatch, fmt.Sprintf("%d bytes after a %d-byte payload", len(payload)-plen, plen)
	}
	voip := w.mode == ModeVoIPSandbox || w.mode == ModeVoIPProduction
	f := Frame{Platform: providers.PlatformAPNs, Token: token, Identifier: id, VoIP: voip,
		Sandbox: w.mode == ModeAPNsSandbox || w.mode == ModeVoIPSandbox}
	if expiry > 0 {
		f.ExpiresAt = time.Unix(int64(expiry), 0).UTC()
	}
	key := "a" + strconv.Itoa(int(w.mode)) + "\x00" + strconv.FormatUint(uint64(expiry), 10) + "\x00" + string(payload)
	b, err := w.shared(key, func() (built, error) { return appleNotification(payload, voip, f.ExpiresAt) })
	if err != nil {
		return Frame{}, ReasonBadJSON, err.Error()
	}
	f.Notification, f.Title, f.Body = b.n, b.title, b.body
	return f, "", ""
}

// unwrap checks the "Content-type: application/json\r\nContent-length: N
// \r\n\r\n" wrapper of Google and Huawei frames and returns the JSON.
func unwrap(raw []byte) ([]byte, Reason, string) {
	head, body, ok := bytes.Cut(raw, []byte(wrapperSeparator))
	if !ok {
		return nil, ReasonBadWrapper, "no header end"
	}
	length := -1
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, ReasonBadWrapper, "header line without ':'"
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-type")):
			if !bytes.HasPrefix(bytes.ToLower(value), []byte("application/json")) {
				return nil, ReasonBadWrapper, "content type " + strconv.Quote(string(value))
			}
		case bytes.EqualFold(name, []byte("Content-length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return nil, ReasonBadWrapper, "content length " + strconv.Quote(string(value))
			}
			length = n
		}
	}
	switch {
	case length < 0:
		return nil, ReasonBadWrapper, "no Content-length"
	case len(body) < length:
		return nil, ReasonTruncated, fmt.Sprintf("body %d of %d bytes", len(body), length)
	case len(body) > length:
		return nil, ReasonLengthMismatch, fmt.Sprintf("body %d bytes, Content-length %d", len(body), length)
	case length == 0:
		// The module's size trimming failed and left an empty payload.
		return nil, ReasonBadJSON, "empty payload"
	}
	return body, "", ""
}

// built is a converted notification with its user-visible summary.
type built struct {
	n           *providers.Notification
	title, body string
}

// shared returns the batch's notification for key, building it on first
// use, so that identical frames share one pointer.
func (w *walker) shared(key string, build func() (built, error)) (built, error) {
	if b, ok := w.cache[key]; ok {
		return b, nil
	}
	b, err := build()
	if err != nil {
		return built{}, err
	}
	w.cache[key] = b
	return b, nil
}

func b64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
