package relay

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// Mode is a batch's service modifier: which service, and for Apple which
// environment, the frames after it are for.
type Mode int

// Modes, as the pull module numbers them.
const (
	ModeAPNsSandbox    Mode = 1
	ModeAPNsProduction Mode = 2
	ModeGoogleLegacy   Mode = 3 // GOOGLE, and GOOGLE/REV2 up to 23.100
	ModeVoIPSandbox    Mode = 4
	ModeVoIPProduction Mode = 5
	ModeHuawei         Mode = 6
	ModeFCMv1          Mode = 7 // GOOGLE/REV2 from 24.500
)

const (
	maxModeDigits            = 3
	platformHMS              = "hms" // providers has no constant for it yet
	defaultMaxFrames         = 100_000
	defaultMaxFrameBytes     = 64 << 10
	defaultMaxSkipDetails    = 100
	defaultMaxCandidateCount = 16
)

func (m Mode) String() string {
	switch m {
	case ModeAPNsSandbox:
		return "apns-sandbox"
	case ModeAPNsProduction:
		return "apns"
	case ModeGoogleLegacy:
		return "google-legacy"
	case ModeVoIPSandbox:
		return "voip-sandbox"
	case ModeVoIPProduction:
		return "voip"
	case ModeHuawei:
		return "huawei"
	case ModeFCMv1:
		return "fcm-v1"
	}
	return fmt.Sprintf("mode-%d", int(m))
}

func (m Mode) known() bool { return m >= ModeAPNsSandbox && m <= ModeFCMv1 }

// Layout is the batch layout a body was recognised as.
type Layout int

// Layouts. Parsing does not depend on the layout (the walk is the same);
// it is reported for logs and metrics.
const (
	LayoutUnknown Layout = iota
	// Layout24 (24.500): "MOD;tkey=APP;h=HOST;F…" repeated per app.
	Layout24
	// LayoutLegacy (23.100 and older): "MOD;;tkey=APP;h=HOST;F…".
	LayoutLegacy
	// Layout20 (20.5): like LayoutLegacy without h=.
	Layout20
)

func (l Layout) String() string {
	return [...]string{"unknown", "24.500", "23.100", "20.5"}[l]
}

// Reason says why a segment was skipped.
type Reason string

// Skip reasons.
const (
	ReasonNoMode         Reason = "no_mode"          // frame before any mode
	ReasonUnknownMode    Reason = "unknown_mode"     // frame under a mode this relay does not know
	ReasonNoApp          Reason = "no_app"           // frame without a tkey= header
	ReasonTooManyFrames  Reason = "too_many_frames"  // Options.MaxFrames reached
	ReasonFrameTooLarge  Reason = "frame_too_large"  // longer than Options.MaxFrameBytes
	ReasonBadBase64      Reason = "bad_base64"       // not standard padded base64
	ReasonTruncated      Reason = "truncated"        // shorter than its own lengths say
	ReasonLengthMismatch Reason = "length_mismatch"  // longer than its lengths say, or Content-length wrong
	ReasonBadCommand     Reason = "bad_command"      // Apple frame with command other than 1
	ReasonBadTokenLength Reason = "bad_token_length" // Apple token length field not 32
	ReasonBadWrapper     Reason = "bad_wrapper"      // Google/Huawei frame without the HTTP-style header
	ReasonBadJSON        Reason = "bad_json"         // payload is not the expected JSON
	ReasonNoToken        Reason = "no_token"         // payload names no device token
)

// Options configures a Parser. Zero fields take the documented defaults.
type Options struct {
	// MaxFrames caps the frames taken from one batch; the rest are skipped
	// as ReasonTooManyFrames. Default 100000.
	MaxFrames int
	// MaxFrameBytes caps one segment's base64 length. Default 64 KiB (the
	// module's own limits keep frames under 6 KiB).
	MaxFrameBytes int
	// MaxSkipDetails caps Batch.Skipped (counts stay exact). Default 100.
	MaxSkipDetails int
	// Now is the receive time that relative TTLs count from. Default
	// time.Now.
	Now func() time.Time
}

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("relay: invalid options")

// Validate reports the first invalid field by name.
func (o Options) Validate() error {
	switch {
	case o.MaxFrames < 0:
		return fmt.Errorf("%w: MaxFrames: %d is negative", ErrInvalidOptions, o.MaxFrames)
	case o.MaxFrameBytes < 0:
		return fmt.Errorf("%w: MaxFrameBytes: %d is negative", ErrInvalidOptions, o.MaxFrameBytes)
	case o.MaxSkipDetails < 0:
		return fmt.Errorf("%w: MaxSkipDetails: %d is negative", ErrInvalidOptions, o.MaxSkipDetails)
	}
	return nil
}

// Frame is one push the portal asked for.
type Frame struct {
	// Segment is the frame's index among the batch's ;-separated segments.
	Segment int
	Mode    Mode
	// AppKey is the tkey header in force (the portal's APP_ID, _bxdev
	// already stripped in 24.500).
	AppKey string
	// AppCandidates is set, with every tkey of the header run, when the
	// frame follows several tkey headers with no frame between them: the
	// 23.100-and-older multi-app layout, where the frames of all those
	// apps follow the last header. AppKey is then that last header, which
	// is right for the first app's frames only. See ResolveApp.
	AppCandidates []string
	// Host is the h= header in force ("" in 20.5).
	Host string
	// Platform is providers.PlatformAPNs, providers.PlatformFCM or "hms".
	Platform string
	// Sandbox is true for modes 1 and 4 (the APNs development host).
	Sandbox bool
	// VoIP is true for modes 4 and 5.
	VoIP bool
	// Token is the device token (lower-case hex for Apple).
	Token string
	// Identifier is the Apple frame's notification identifier (1..10000).
	Identifier uint32
	// ExpiresAt is when the portal wants the push dropped; zero for none.
	ExpiresAt time.Time
	// Title and Body are what the user would see, for logs and status.
	// For Android modes they live only in Notification.Data (the Bitrix
	// app renders them itself), never in Notification.Title/Body, which
	// would make FCM/HMS show a system notification instead.
	Title, Body string
	// Notification is the converted push, shared by frames of the batch
	// whose content is byte-identical.
	Notification *providers.Notification
}

// ResolveApp picks the app a frame is for, given which app keys pushpull
// has configured. An unambiguous frame gets AppKey. An ambiguous one gets
// its only configured candidate if there is exactly one, else AppKey if
// that is configured (the portal's own reading), else nothing.
func (f *Frame) ResolveApp(configured func(appKey string) bool) (string, bool) {
	if len(f.AppCandidates) > 1 {
		var pick string
		n := 0
		for _, c := range f.AppCandidates {
			if configured(c) {
				pick = c
				n++
			}
		}
		if n == 1 {
			return pick, true
		}
	}
	if configured(f.AppKey) {
		return f.AppKey, true
	}
	return "", false
}

// Skip is one segment that did not become a frame.
type Skip struct {
	Segment int
	Mode    Mode
	Reason  Reason
	Detail  string
}

// Batch is the result of parsing one MessageBody.
type Batch struct {
	Layout Layout
	Frames []Frame
	// Segments is the number of ;-separated segments, Empty how many of
	// them were empty, Headers how many were mode/tkey/h headers.
	Segments, Empty, Headers int
	// Ambiguous is the number of frames with AppCandidates.
	Ambiguous int
	// SkipCounts counts skipped segments by reason (exact); Skipped holds
	// the first Options.MaxSkipDetails of them with details.
	SkipCounts map[Reason]int
	Skipped    []Skip
}

// Skips is the total number of skipped segments.
func (b *Batch) Skips() int {
	n := 0
	for _, c := range b.SkipCounts {
		n += c
	}
	return n
}

// Parser parses batches. It is stateless and safe for concurrent use.
type Parser struct {
	opts Options
}

// NewParser validates o and returns a Parser.
func NewParser(o Options) (*Parser, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxFrames == 0 {
		o.MaxFrames = defaultMaxFrames
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = defaultMaxFrameBytes
	}
	if o.MaxSkipDetails == 0 {
		o.MaxSkipDetails = defaultMaxSkipDetails
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Parser{opts: o}, nil
}

// walker is the state of one Parse call.
type walker struct {
	p     *Parser
	b     *Batch
	now   time.Time
	cache map[string]built

	mode       Mode
	haveMode   bool
	app, host  string
	run        []string // tkeys of the current header run
	runClosed  bool     // a frame followed the run
	modeThenE  bool     // last segment was a mode and the next one empty
	prevWasMod bool
}

// Parse splits body on ';' and walks the segments: empty ones are skipped,
// digits set the mode (and reset app and host), tkey= and h= set app and
// host, anything else is a base64 frame decoded by the current mode.
func (p *Parser) Parse(body string) *Batch {
	b := &Batch{SkipCounts: make(map[Reason]int)}
	w := &walker{p: p, b: b, now: p.opts.Now(), cache: make(map[string]built)}
	sawHost, sawLegacyGap, sawDirect := false, false, false
	for i := 0; ; i++ {
		seg, rest, more := strings.Cut(body, ";")
		body = rest
		b.Segments++
		switch {
		case seg == "":
			b.Empty++
			if w.prevWasMod {
				w.modeThenE = true
			}
			w.prevWasMod = false
		case isDigits(seg):
			b.Headers++
			w.setMode(seg)
			w.prevWasMod, w.modeThenE = true, false
		case strings.HasPrefix(seg, "tkey="):
			b.Headers++
			if w.prevWasMod {
				sawDirect = true
			} else if w.modeThenE {
				sawLegacyGap = true
			}
			w.setApp(seg[len("tkey="):])
			w.prevWasMod, w.modeThenE = false, false
		case strings.HasPrefix(seg, "h="):
			b.Headers++
			sawHost = true
			w.host = seg[len("h="):]
			w.prevWasMod, w.modeThenE = false, false
		default:
			w.prevWasMod, w.modeThenE = false, false
			w.frame(i, seg)
		}
		if !more {
			break
		}
	}
	switch {
	case sawDirect:
		b.Layout = Layout24
	case sawLegacyGap && sawHost:
		b.Layout = LayoutLegacy
	case sawLegacyGap:
		b.Layout = Layout20
	}
	return b
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func (w *walker) setMode(seg string) {
	m := Mode(0)
	if len(seg) <= maxModeDigits {
		for i := 0; i < len(seg); i++ {
			m = m*10 + Mode(seg[i]-'0')
		}
	} else {
		m = -1
	}
	w.mode, w.haveMode = m, true
	w.app, w.host, w.run, w.runClosed = "", "", nil, false
}

func (w *walker) setApp(app string) {
	if w.runClosed {
		w.run, w.runClosed = nil, false
	}
	if len(w.run) < defaultMaxCandidateCount {
		w.run = append(w.run, app)
	}
	w.app = app
}

func (w *walker) skip(seg int, r Reason, detail string) {
	w.b.SkipCounts[r]++
	if len(w.b.Skipped) < w.p.opts.MaxSkipDetails {
		w.b.Skipped = append(w.b.Skipped, Skip{Segment: seg, Mode: w.mode, Reason: r, Detail: detail})
	}
}

// frame checks the header state and decodes one frame segment.
func (w *walker) frame(seg int, s string) {
	switch {
	case !w.haveMode:
		w.skip(seg, ReasonNoMode, "")
		return
	case !w.mode.known():
		w.skip(seg, ReasonUnknownMode, w.mode.String())
		return
	case w.app == "":
		w.skip(seg, ReasonNoApp, "")
		return
	case len(w.b.Frames) >= w.p.opts.MaxFrames:
		w.skip(seg, ReasonTooManyFrames, "")
		return
	case len(s) > w.p.opts.MaxFrameBytes:
		w.skip(seg, ReasonFrameTooLarge, fmt.Sprintf("%d bytes", len(s)))
		return
	}
	w.runClosed = true
	frames, reason, detail := w.decode(s)
	if reason != "" {
		w.skip(seg, reason, detail)
		return
	}
	for _, f := range frames {
		if len(w.b.Frames) >= w.p.opts.MaxFrames {
			w.skip(seg, ReasonTooManyFrames, "")
			return
		}
		f.Segment, f.Mode, f.AppKey, f.Host = seg, w.mode, w.app, w.host
		if len(w.run) > 1 {
			f.AppCandidates = w.run
			w.b.Ambiguous++
		}
		w.b.Frames = append(w.b.Frames, f)
	}
}
