package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written as "10s", "1h30m" in TOML and in
// environment variables.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"10s\", \"5m\", \"24h\"): %q", b)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative: %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

func dur(d time.Duration) Duration { return Duration{d} }

// Config is the whole configuration file. Every field has a default in
// defaultConfig and a line in config.example.toml; a test keeps the three in
// step.
type Config struct {
	Server  ServerConfig  `toml:"server"`
	Log     LogConfig     `toml:"log"`
	API     APIConfig     `toml:"api"`
	Client  ClientConfig  `toml:"client"`
	Live    LiveConfig    `toml:"live"`
	Queue   QueueConfig   `toml:"queue"`
	Devices DevicesConfig `toml:"devices"`
	Push    PushConfig    `toml:"push"`
	APNs    APNsConfig    `toml:"apns"`
	FCM     FCMConfig     `toml:"fcm"`
	HMS     HMSConfig     `toml:"hms"`
	Demo    DemoConfig    `toml:"demo"`
	Bitrix  BitrixConfig  `toml:"bitrix"`
	Relay   RelayConfig   `toml:"relay"`
	Admin   AdminConfig   `toml:"admin"`
	Cluster ClusterConfig `toml:"cluster"`
}

// AdminConfig is the [admin] section: the dashboard at /admin/ on the
// publisher listener.
type AdminConfig struct {
	Enabled     bool     `toml:"enabled"`
	SessionTTL  Duration `toml:"session_ttl"`
	MaxAge      Duration `toml:"max_age"`
	MaxSessions int      `toml:"max_sessions"`
}

// RelayConfig is the [relay] section: the Bitrix CPushManager relay
// endpoint (a portal's push_service_url) with its [[relay.app]] mapping.
type RelayConfig struct {
	Enabled             bool       `toml:"enabled"`
	Prefix              string     `toml:"prefix"`
	Secret              string     `toml:"secret"`
	SecretFile          string     `toml:"secret_file"`
	Keys                []string   `toml:"keys"`
	LicenseKeys         []string   `toml:"license_keys"`
	MaxBodyBytes        int64      `toml:"max_body_bytes"`
	DefaultExpiry       Duration   `toml:"default_expiry"`
	TokenRemoveCallback bool       `toml:"token_remove_callback"`
	CallbackScheme      string     `toml:"callback_scheme"`
	Apps                []RelayApp `toml:"app"`
}

// RelayApp is one [[relay.app]] entry: a portal app key (tkey) and the
// pushpull apps its frames are sent with.
type RelayApp struct {
	Key  string `toml:"key"`
	APNs string `toml:"apns"`
	FCM  string `toml:"fcm"`
	HMS  string `toml:"hms"`
}

// BitrixConfig is the [bitrix] section: the Bitrix push server protocols.
type BitrixConfig struct {
	Enabled               bool     `toml:"enabled"`
	SignatureKey          string   `toml:"signature_key"`
	SignatureKeyFile      string   `toml:"signature_key_file"`
	SignatureAlgo         string   `toml:"signature_algo"`
	MaxPayload            int64    `toml:"max_payload"`
	MaxMessagesPerRequest int      `toml:"max_messages_per_request"`
	MaxChannelsPerMessage int      `toml:"max_channels_per_message"`
	MaxConnsPerChannel    int      `toml:"max_conns_per_channel"`
	MessageTTL            Duration `toml:"message_ttl"`
	TextZeroExpiryLive    bool     `toml:"text_zero_expiry_live_only"`
	PollHold              Duration `toml:"poll_hold"`
	PublicURL             string   `toml:"public_url"`
	ServerVersion         int      `toml:"server_version"`
	AllowedOrigins        []string `toml:"allowed_origins"`
}

// DemoConfig is the [demo] section.
type DemoConfig struct {
	Enabled bool `toml:"enabled"`
}

// ServerConfig is the [server] section.
type ServerConfig struct {
	DataDir         string   `toml:"data_dir"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	TrustedProxies  []string `toml:"trusted_proxies"`
}

// LogConfig is the [log] section.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// APIConfig is the [api] section: the publisher listener.
type APIConfig struct {
	Addr          string   `toml:"addr"`
	Keys          []string `toml:"keys"`
	KeyFiles      []string `toml:"key_files"`
	TLSCert       string   `toml:"tls_cert"`
	TLSKey        string   `toml:"tls_key"`
	MaxBodyBytes  int64    `toml:"max_body_bytes"`
	MaxItems      int      `toml:"max_items"`
	MaxRecipients int      `toml:"max_recipients"`
}

// ClientConfig is the [client] section: the client listener and tokens.
type ClientConfig struct {
	Addr            string   `toml:"addr"`
	PublicURL       string   `toml:"public_url"`
	JWTSecret       string   `toml:"jwt_secret"`
	JWTSecretFile   string   `toml:"jwt_secret_file"`
	TokenTTL        Duration `toml:"token_ttl"`
	AllowedOrigins  []string `toml:"allowed_origins"`
	TLSCert         string   `toml:"tls_cert"`
	TLSKey          string   `toml:"tls_key"`
	PingInterval    Duration `toml:"ping_interval"`
	MaxConnsPerUser int      `toml:"max_conns_per_user"`
}

// LiveConfig is the [live] section: hub, history and watch tags.
type LiveConfig struct {
	HistorySize  int      `toml:"history_size"`
	HistoryBytes int64    `toml:"history_bytes"`
	QueueSize    int      `toml:"queue_size"`
	EventExpiry  Duration `toml:"event_expiry"`
	WatchTTL     Duration `toml:"watch_ttl"`
}

// QueueConfig is the [queue] section: the durable push queue.
type QueueConfig struct {
	BackoffBase       Duration `toml:"backoff_base"`
	BackoffCap        Duration `toml:"backoff_cap"`
	MaxAttempts       int      `toml:"max_attempts"`
	LeaseTimeout      Duration `toml:"lease_timeout"`
	DeadRetention     Duration `toml:"dead_retention"`
	DeadMax           int      `toml:"dead_max"`
	StatusRetention   Duration `toml:"status_retention"`
	IdempotencyWindow Duration `toml:"idempotency_window"`
}

// DevicesConfig is the [devices] section.
type DevicesConfig struct {
	StaleAfter Duration `toml:"stale_after"`
}

// PushConfig is the [push] section: the dispatcher and feedback webhook.
type PushConfig struct {
	Workers            int      `toml:"workers"`
	LeaseBatch         int      `toml:"lease_batch"`
	SendTimeout        Duration `toml:"send_timeout"`
	DefaultExpiry      Duration `toml:"default_expiry"`
	FeedbackURL        string   `toml:"feedback_url"`
	FeedbackSecret     string   `toml:"feedback_secret"`
	FeedbackSecretFile string   `toml:"feedback_secret_file"`
}

// APNsConfig is the [apns] section with its [[apns.app]] entries.
type APNsConfig struct {
	ProductionURL string    `toml:"production_url"`
	SandboxURL    string    `toml:"sandbox_url"`
	CAFile        string    `toml:"ca_file"`
	Concurrency   int       `toml:"concurrency"`
	Timeout       Duration  `toml:"timeout"`
	Apps          []APNsApp `toml:"app"`
}

// APNsApp is one [[apns.app]] entry.
type APNsApp struct {
	ID               string `toml:"id"`
	Topic            string `toml:"topic"`
	VoIPTopic        string `toml:"voip_topic"`
	KeyFile          string `toml:"key_file"`
	KeyID            string `toml:"key_id"`
	TeamID           string `toml:"team_id"`
	CertFile         string `toml:"cert_file"`
	CertPassword     string `toml:"cert_password"`
	CertPasswordFile string `toml:"cert_password_file"`
}

// FCMConfig is the [fcm] section with its [[fcm.app]] entries.
type FCMConfig struct {
	Endpoint    string   `toml:"endpoint"`
	Concurrency int      `toml:"concurrency"`
	Timeout     Duration `toml:"timeout"`
	Apps        []FCMApp `toml:"app"`
}

// FCMApp is one [[fcm.app]] entry.
type FCMApp struct {
	ID              string `toml:"id"`
	CredentialsFile string `toml:"credentials_file"`
	ProjectID       string `toml:"project_id"`
}

// HMSConfig is the [hms] section with its [[hms.app]] entries (Huawei Push Kit).
type HMSConfig struct {
	Endpoint    string   `toml:"endpoint"`
	TokenURL    string   `toml:"token_url"`
	Concurrency int      `toml:"concurrency"`
	Timeout     Duration `toml:"timeout"`
	Apps        []HMSApp `toml:"app"`
}

// HMSApp is one [[hms.app]] entry.
type HMSApp struct {
	ID               string `toml:"id"`
	HMSAppID         string `toml:"hms_app_id"`
	ClientID         string `toml:"client_id"`
	ClientSecret     string `toml:"client_secret"`
	ClientSecretFile string `toml:"client_secret_file"`
	HighUrgency      bool   `toml:"high_urgency"`
	BadgeClass       string `toml:"badge_class"`
}

func defaultConfig() Config {
	return Config{
		Server: ServerConfig{DataDir: "./data", ShutdownTimeout: dur(10 * time.Second), TrustedProxies: []string{}},
		Log:    LogConfig{Level: "info", Format: "text"},
		API: APIConfig{
			Addr: "127.0.0.1:8895", Keys: []string{}, KeyFiles: []string{},
			MaxBodyBytes: 1 << 20, MaxItems: 1000, MaxRecipients: 10000,
		},
		Client: ClientConfig{
			Addr: ":8893", TokenTTL: dur(12 * time.Hour), AllowedOrigins: []string{},
			PingInterval: dur(25 * time.Second), MaxConnsPerUser: 32,
		},
		Live: LiveConfig{
			HistorySize: 1000, HistoryBytes: 64 << 20, QueueSize: 1024,
			EventExpiry: dur(24 * time.Hour), WatchTTL: dur(1860 * time.Second),
		},
		Queue: QueueConfig{
			BackoffBase: dur(time.Second), BackoffCap: dur(30 * time.Minute), MaxAttempts: 25,
			LeaseTimeout: dur(time.Minute), DeadRetention: dur(7 * 24 * time.Hour), DeadMax: 100000,
			StatusRetention: dur(24 * time.Hour), IdempotencyWindow: dur(24 * time.Hour),
		},
		Devices: DevicesConfig{StaleAfter: dur(60 * 24 * time.Hour)},
		Push: PushConfig{
			Workers: 4, LeaseBatch: 500, SendTimeout: dur(30 * time.Second),
			DefaultExpiry: dur(12 * time.Hour),
		},
		APNs: APNsConfig{Concurrency: 256, Timeout: dur(10 * time.Second)},
		FCM:  FCMConfig{Concurrency: 100, Timeout: dur(10 * time.Second)},
		HMS:  HMSConfig{Concurrency: 100, Timeout: dur(10 * time.Second)},
		Bitrix: BitrixConfig{
			SignatureAlgo: "sha1", MaxPayload: 1 << 20, MaxMessagesPerRequest: 100,
			MaxChannelsPerMessage: 100, MaxConnsPerChannel: 100, MessageTTL: dur(24 * time.Hour),
			PollHold: dur(40 * time.Second), ServerVersion: 4, AllowedOrigins: []string{},
		},
		Admin: AdminConfig{Enabled: true, SessionTTL: dur(12 * time.Hour), MaxAge: dur(7 * 24 * time.Hour), MaxSessions: 100},
		Relay: RelayConfig{
			Prefix: "/bitrix-relay", Keys: []string{}, LicenseKeys: []string{},
			MaxBodyBytes: 16 << 20, DefaultExpiry: dur(12 * time.Hour), CallbackScheme: "https",
		},
		Cluster: defaultClusterConfig(),
	}
}

// ConfigError is a configuration problem, naming the key.
type ConfigError struct {
	Key     string // e.g. "api.addr" or "PUSHPULL_API_ADDR"
	Message string
}

func (e *ConfigError) Error() string { return "config: " + e.Key + ": " + e.Message }

const envPrefix = "PUSHPULL_"

// loadConfig reads path (empty: defaults only), then applies environment
// overrides from environ, then validates. Unknown keys, in the file or in
// PUSHPULL_ variables, are errors naming the key.
func loadConfig(path string, environ []string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&cfg)
		if err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				if pe.LastKey != "" {
					return cfg, &ConfigError{Key: pe.LastKey, Message: fmt.Sprintf("%s (%s line %d)", pe.Message, path, pe.Position.Line)}
				}
				return cfg, fmt.Errorf("config: %s: line %d: %s", path, pe.Position.Line, pe.Message)
			}
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			sort.Strings(keys)
			return cfg, &ConfigError{Key: keys[0], Message: "unknown key (see config.example.toml)"}
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	if err := cfg.resolveSecrets(filepath.Dir(path)); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// applyEnv sets scalar and list fields from PUSHPULL_<SECTION>_<KEY>
// variables. Lists are comma-separated. [[apns.app]]/[[fcm.app]] entries
// come from the file only.
func applyEnv(cfg *Config, environ []string) error {
	known := map[string]reflect.Value{}
	root := reflect.ValueOf(cfg).Elem()
	for i := 0; i < root.NumField(); i++ {
		sec := root.Type().Field(i).Tag.Get("toml")
		sv := root.Field(i)
		for j := 0; j < sv.NumField(); j++ {
			f := sv.Type().Field(j)
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				continue
			}
			key := envPrefix + strings.ToUpper(sec+"_"+f.Tag.Get("toml"))
			known[key] = sv.Field(j)
		}
	}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		fv, ok := known[name]
		if !ok {
			return &ConfigError{Key: name, Message: "unknown environment variable (see config.example.toml)"}
		}
		if err := setField(fv, val); err != nil {
			return &ConfigError{Key: name, Message: err.Error()}
		}
	}
	return nil
}

func setField(fv reflect.Value, val string) error {
	if u, ok := fv.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(val))
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(val)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", val)
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("not a boolean: %q", val)
		}
		fv.SetBool(b)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(val, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", fv.Kind())
	}
	return nil
}

// readSecretFile reads a secret file, trimming one trailing newline, and
// resolves a relative path against the config file's directory.
func readSecretFile(key, path, base string) (string, error) {
	if !filepath.IsAbs(path) && base != "" {
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(base, path)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &ConfigError{Key: key, Message: err.Error()}
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", &ConfigError{Key: key, Message: "file " + path + " is empty"}
	}
	return s, nil
}

func (c *Config) resolveSecrets(base string) error {
	for _, f := range c.API.KeyFiles {
		k, err := readSecretFile("api.key_files", f, base)
		if err != nil {
			return err
		}
		c.API.Keys = append(c.API.Keys, k)
	}
	if c.Client.JWTSecretFile != "" {
		s, err := readSecretFile("client.jwt_secret_file", c.Client.JWTSecretFile, base)
		if err != nil {
			return err
		}
		c.Client.JWTSecret = s
	}
	if c.Push.FeedbackSecretFile != "" {
		s, err := readSecretFile("push.feedback_secret_file", c.Push.FeedbackSecretFile, base)
		if err != nil {
			return err
		}
		c.Push.FeedbackSecret = s
	}
	if c.Relay.SecretFile != "" {
		s, err := readSecretFile("relay.secret_file", c.Relay.SecretFile, base)
		if err != nil {
			return err
		}
		c.Relay.Secret = s
	}
	if c.Bitrix.SignatureKeyFile != "" {
		s, err := readSecretFile("bitrix.signature_key_file", c.Bitrix.SignatureKeyFile, base)
		if err != nil {
			return err
		}
		c.Bitrix.SignatureKey = s
	}
	for i := range c.APNs.Apps {
		a := &c.APNs.Apps[i]
		if a.CertPasswordFile != "" {
			s, err := readSecretFile(fmt.Sprintf("apns.app[%d].cert_password_file", i), a.CertPasswordFile, base)
			if err != nil {
				return err
			}
			a.CertPassword = s
		}
	}
	return nil
}

// validate checks what can be checked without building the packages; each
// package's Options.Validate checks the rest when serve builds it.
func (c *Config) validate() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{Key: "log.level", Message: "must be debug, info, warn or error"}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &ConfigError{Key: "log.format", Message: "must be text or json"}
	}
	if c.Server.DataDir == "" {
		return &ConfigError{Key: "server.data_dir", Message: "required"}
	}
	if c.API.Addr == "" {
		return &ConfigError{Key: "api.addr", Message: "required"}
	}
	if c.Client.Addr == "" {
		return &ConfigError{Key: "client.addr", Message: "required"}
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return &ConfigError{Key: "api.tls_cert", Message: "tls_cert and tls_key go together"}
	}
	if (c.Client.TLSCert == "") != (c.Client.TLSKey == "") {
		return &ConfigError{Key: "client.tls_cert", Message: "tls_cert and tls_key go together"}
	}
	for _, p := range []struct {
		key string
		v   int64
	}{
		{"api.max_body_bytes", c.API.MaxBodyBytes}, {"api.max_items", int64(c.API.MaxItems)},
		{"api.max_recipients", int64(c.API.MaxRecipients)}, {"client.max_conns_per_user", int64(c.Client.MaxConnsPerUser)},
		{"live.history_size", int64(c.Live.HistorySize)}, {"live.history_bytes", c.Live.HistoryBytes},
		{"live.queue_size", int64(c.Live.QueueSize)}, {"queue.max_attempts", int64(c.Queue.MaxAttempts)},
		{"queue.dead_max", int64(c.Queue.DeadMax)}, {"push.workers", int64(c.Push.Workers)},
		{"push.lease_batch", int64(c.Push.LeaseBatch)}, {"apns.concurrency", int64(c.APNs.Concurrency)},
		{"fcm.concurrency", int64(c.FCM.Concurrency)}, {"hms.concurrency", int64(c.HMS.Concurrency)},
		{"admin.max_sessions", int64(c.Admin.MaxSessions)},
	} {
		if p.v <= 0 {
			return &ConfigError{Key: p.key, Message: "must be positive"}
		}
	}
	for _, k := range c.API.Keys {
		if len(k) < 16 {
			return &ConfigError{Key: "api.keys", Message: "every key must be at least 16 characters"}
		}
	}
	if c.Client.JWTSecret != "" && len(c.Client.JWTSecret) < 32 {
		return &ConfigError{Key: "client.jwt_secret", Message: "must be at least 32 characters"}
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	return c.Relay.validate()
}

func (r *RelayConfig) validate() error {
	if !r.Enabled {
		return nil
	}
	switch {
	case r.Secret != "" && len(r.Secret) < 16:
		return &ConfigError{Key: "relay.secret", Message: "must be at least 16 characters (empty: generated)"}
	case len(r.Keys) == 0 && len(r.LicenseKeys) == 0:
		return &ConfigError{Key: "relay.keys", Message: "at least one portal key (keys = md5 of the license key, or license_keys)"}
	case len(r.Apps) == 0:
		return &ConfigError{Key: "relay.app", Message: "at least one [[relay.app]] (key = the portal's app id, apns/fcm/hms = pushpull app ids)"}
	case r.MaxBodyBytes <= 0:
		return &ConfigError{Key: "relay.max_body_bytes", Message: "must be positive"}
	case r.CallbackScheme != "https" && r.CallbackScheme != "http":
		return &ConfigError{Key: "relay.callback_scheme", Message: "must be https or http"}
	}
	for i, k := range r.Keys {
		if len(k) != 32 || strings.Trim(strings.ToLower(k), "0123456789abcdef") != "" {
			return &ConfigError{Key: fmt.Sprintf("relay.keys[%d]", i), Message: "not an md5 hex digest (32 hex digits); put plain license keys in license_keys"}
		}
	}
	return nil
}
