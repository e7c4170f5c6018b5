// Package token mints and verifies the client tokens that browsers and
// mobile apps present to the client listener.
//
// A client token is a JWT signed with HS256 and a secret shared with the
// backend, so a PHP backend with a JWT library can mint the same tokens
// itself. Claims: sub (user id, required), exp and iat (required), tags
// (tags the client may extend a watch on) and client (web, mobile, desktop).
// Verification accepts HS256 only: "none" and every other algorithm are
// rejected, and so is a token without exp.
package token

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Client kinds a token may name.
const (
	ClientWeb     = "web"
	ClientMobile  = "mobile"
	ClientDesktop = "desktop"
)

// Errors returned by Verify. Both mean "unauthenticated" to the caller.
var (
	ErrInvalid = errors.New("token: invalid")
	ErrExpired = errors.New("token: expired")
)

// Claims are what a verified token says about its holder.
type Claims struct {
	User      string
	Tags      []string
	Client    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Options configure an Issuer.
type Options struct {
	// Secret is the HS256 key shared with the backend. At least 32 bytes.
	Secret []byte
	// DefaultTTL is used by Mint when ttl is 0. Default 12h.
	DefaultTTL time.Duration
	// MaxTTL caps the ttl Mint accepts. Default 7 days.
	MaxTTL time.Duration
	// Leeway tolerates clock skew when checking exp and iat. Default 30s.
	Leeway time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// MinSecretLen is the shortest secret accepted: an HS256 key shorter than
// the hash output weakens it.
const MinSecretLen = 32

func (o *Options) setDefaults() {
	if o.DefaultTTL == 0 {
		o.DefaultTTL = 12 * time.Hour
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = 7 * 24 * time.Hour
	}
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports the first invalid option, naming it.
func (o Options) Validate() error {
	if len(o.Secret) < MinSecretLen {
		return fmt.Errorf("secret: must be at least %d bytes (got %d)", MinSecretLen, len(o.Secret))
	}
	if o.DefaultTTL < 0 || o.MaxTTL < 0 || o.Leeway < 0 {
		return errors.New("ttl: must not be negative")
	}
	if o.MaxTTL != 0 && o.DefaultTTL > o.MaxTTL {
		return errors.New("default_ttl: exceeds max_ttl")
	}
	return nil
}

// Issuer mints and verifies client tokens. It is safe for concurrent use.
type Issuer struct {
	o Options
}

// New returns an Issuer for o.
func New(o Options) (*Issuer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	o.Secret = append([]byte(nil), o.Secret...)
	return &Issuer{o: o}, nil
}

// DefaultTTL is the lifetime of a token minted with ttl 0.
func (i *Issuer) DefaultTTL() time.Duration { return i.o.DefaultTTL }

// MaxTTL is the longest lifetime Mint accepts.
func (i *Issuer) MaxTTL() time.Duration { return i.o.MaxTTL }

type jwtClaims struct {
	Tags   []string `json:"tags,omitempty"`
	Client string   `json:"client,omitempty"`
	jwt.RegisteredClaims
}

// Mint returns a signed token for user, valid for ttl (0 = DefaultTTL),
// and its expiry. It fails when user is empty or ttl exceeds MaxTTL.
func (i *Issuer) Mint(user string, ttl time.Duration, tags []string, client string) (string, time.Time, error) {
	if user == "" {
		return "", time.Time{}, errors.New("user: required")
	}
	// JSON encoding would replace invalid bytes with U+FFFD: the token
	// would name another user (or tag) than the one asked for.
	if !utf8.ValidString(user) || !utf8.ValidString(client) {
		return "", time.Time{}, errors.New("user, client: must be valid UTF-8")
	}
	for _, t := range tags {
		if !utf8.ValidString(t) {
			return "", time.Time{}, errors.New("tags: must be valid UTF-8")
		}
	}
	if ttl == 0 {
		ttl = i.o.DefaultTTL
	}
	if ttl < 0 || ttl > i.o.MaxTTL {
		return "", time.Time{}, fmt.Errorf("ttl: must be between 1s and %s", i.o.MaxTTL)
	}
	now := i.o.Now().Truncate(time.Second)
	exp := now.Add(ttl)
	c := jwtClaims{
		Tags:   tags,
		Client: client,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.o.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks s and returns its claims. The error wraps ErrExpired for
// an expired token and ErrInvalid for anything else wrong with it.
func (i *Issuer) Verify(s string) (Claims, error) {
	var c jwtClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.o.Leeway),
		jwt.WithTimeFunc(i.o.Now),
	)
	_, err := p.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return i.o.Secret, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no sub claim", ErrInvalid)
	}
	out := Claims{User: c.Subject, Tags: c.Tags, Client: c.Client}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = c.ExpiresAt.Time
	}
	return out, nil
}

// Allows reports whether the claims list tag among the tags the client may
// extend.
func (c Claims) Allows(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
