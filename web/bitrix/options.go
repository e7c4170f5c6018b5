package bitrix

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// ErrInvalidOptions is wrapped by every error returned from Options.Validate.
var ErrInvalidOptions = errors.New("bitrix: invalid options")

// Defaults applied to zero Options fields (the N2 push server's limits).
const (
	DefaultSignatureAlgo         = "sha1"
	DefaultMaxPayload            = 1 << 20
	DefaultMaxMessagesPerRequest = 100
	DefaultMaxChannelsPerMessage = 100
	DefaultMaxConnsPerChannel    = 100
	DefaultMessageTTL            = 86400 * time.Second
	DefaultPollHold              = 40 * time.Second
	DefaultBatchWindow           = 100 * time.Millisecond
	DefaultPingInterval          = 120 * time.Second
	DefaultRPCPingInterval       = 10 * time.Second
	DefaultOnlineTTL             = 130 * time.Second
	DefaultServerVersion         = 4
	DefaultJWTTTL                = 12 * time.Hour
	// ChannelTTL is the lifetime of a channel in a config (CPullChannel).
	ChannelTTL = 43205 * time.Second
)

// Options configures the Bitrix protocols. The zero value is valid apart
// from SignatureKey, which should be set (without it any 32-hex id is
// accepted unsigned, as the reference servers do).
type Options struct {
	// SignatureKey is the pull module's signature_key: the HMAC key of
	// channel signatures, the JSON-RPC body signature and the v5 JWT.
	SignatureKey string
	// SignatureAlgo is "sha1" (default, 40 hex) or "sha256" (64 hex).
	SignatureAlgo string
	// MaxPayload bounds a publish body in bytes (413 above) and a WebSocket
	// message. Default 1 MiB.
	MaxPayload int64
	// MaxMessagesPerRequest bounds the messages of one publish (4016).
	// Default 100.
	MaxMessagesPerRequest int
	// MaxChannelsPerMessage bounds the receivers of one message (4018) and
	// the ids of one CHANNEL_ID list. Default 100.
	MaxChannelsPerMessage int
	// MaxConnsPerChannel bounds the live connections of a private channel
	// that has a public id; the oldest is closed with 4029 beyond it.
	// Default 100.
	MaxConnsPerChannel int
	// MessageTTL caps every message's expiry. Default 86400s.
	MessageTTL time.Duration
	// TextZeroExpiry is the expiry of a text (version 3) publish without a
	// Message-Expiry header or with 0: Push server 1.0 stored such messages
	// for MessageTTL, which is the default. Set a negative value for "live
	// only" (Push server 2.0). Protobuf and JSON-RPC expiry 0 is always live
	// only, as in Push server 2.0.
	TextZeroExpiry time.Duration
	// PollHold is how long a long poll is held before 304. Default 40s.
	PollHold time.Duration
	// BatchWindow is how long, after writing a WebSocket frame, further
	// events are collected into the next frame. Default 100ms.
	BatchWindow time.Duration
	// PingInterval is the WebSocket protocol ping period in text and binary
	// modes; a peer that does not answer by the next ping is closed.
	// Default 120s.
	PingInterval time.Duration
	// RPCPingInterval is the period of the text "ping" frame in JSON-RPC
	// mode (the client gives up after 20 s without one). Default 10s.
	RPCPingInterval time.Duration
	// OnlineTTL is how long a channel or user counts as online after its
	// last connection ended. Default 130s.
	OnlineTTL time.Duration
	// PublicURL is the base URL clients reach the subscribe listener at
	// ("https://push.example.com"), for the config endpoint. Required for
	// the config endpoint to be registered.
	PublicURL string
	// ServerVersion is the version the config endpoint announces unless
	// ?version= says otherwise: 3, 4 (default) or 5.
	ServerVersion int
	// JWTTTL is the lifetime of the v5 JWT minted by the config endpoint.
	// Default 12h.
	JWTTTL time.Duration
	// AllowedOrigins restricts the Origin of WebSocket handshakes (host
	// patterns as in coder/websocket). Empty: any origin, as the Bitrix
	// servers do (channel ids are signed secrets, not cookies).
	AllowedOrigins []string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives protocol errors. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.SignatureAlgo == "" {
		o.SignatureAlgo = DefaultSignatureAlgo
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxMessagesPerRequest == 0 {
		o.MaxMessagesPerRequest = DefaultMaxMessagesPerRequest
	}
	if o.MaxChannelsPerMessage == 0 {
		o.MaxChannelsPerMessage = DefaultMaxChannelsPerMessage
	}
	if o.MaxConnsPerChannel == 0 {
		o.MaxConnsPerChannel = DefaultMaxConnsPerChannel
	}
	if o.MessageTTL == 0 {
		o.MessageTTL = DefaultMessageTTL
	}
	if o.TextZeroExpiry == 0 {
		o.TextZeroExpiry = o.MessageTTL
	}
	if o.PollHold == 0 {
		o.PollHold = DefaultPollHold
	}
	if o.BatchWindow == 0 {
		o.BatchWindow = DefaultBatchWindow
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.RPCPingInterval == 0 {
		o.RPCPingInterval = DefaultRPCPingInterval
	}
	if o.OnlineTTL == 0 {
		o.OnlineTTL = DefaultOnlineTTL
	}
	if o.ServerVersion == 0 {
		o.ServerVersion = DefaultServerVersion
	}
	if o.JWTTTL == 0 {
		o.JWTTTL = DefaultJWTTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports the first field with an invalid value. Zero values are
// valid (they mean "default").
func (o Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	switch o.SignatureAlgo {
	case "", "sha1", "sha256":
	default:
		return bad("SignatureAlgo", "%q is not sha1 or sha256", o.SignatureAlgo)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxPayload", o.MaxPayload},
		{"MaxMessagesPerRequest", int64(o.MaxMessagesPerRequest)},
		{"MaxChannelsPerMessage", int64(o.MaxChannelsPerMessage)},
		{"MaxConnsPerChannel", int64(o.MaxConnsPerChannel)},
		{"MessageTTL", int64(o.MessageTTL)},
		{"PollHold", int64(o.PollHold)},
		{"BatchWindow", int64(o.BatchWindow)},
		{"PingInterval", int64(o.PingInterval)},
		{"RPCPingInterval", int64(o.RPCPingInterval)},
		{"OnlineTTL", int64(o.OnlineTTL)},
		{"JWTTTL", int64(o.JWTTTL)},
	} {
		if f.v < 0 {
			return bad(f.name, "must not be negative")
		}
	}
	switch o.ServerVersion {
	case 0, 3, 4, 5:
	default:
		return bad("ServerVersion", "%d is not 3, 4 or 5", o.ServerVersion)
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("PublicURL", "%q is not an http(s) URL", o.PublicURL)
		}
	}
	return nil
}
