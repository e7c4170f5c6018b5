package bitrix

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtClaims are the claims of the version 5 subscribe token (BITRIX.md §6):
// iss host id, sub user id, chan comma-separated raw channel ids.
type jwtClaims struct {
	jwt.RegisteredClaims
	Chan string `json:"chan,omitempty"`
}

// channels returns the well-formed ids of chan.
func (c *jwtClaims) channels() []string {
	var out []string
	for _, id := range strings.Split(c.Chan, ",") {
		if id = strings.TrimSpace(id); isHex32(id) {
			out = append(out, id)
		}
	}
	return out
}

// parseJWT verifies a v5 token: HS256 with the signature key, exp required
// and in the future. Every failure is a 4010 (the client reloads its config).
func (s *Server) parseJWT(tok string) (*jwtClaims, error) {
	var cl jwtClaims
	_, err := jwt.ParseWithClaims(tok, &cl, func(*jwt.Token) (any, error) {
		return []byte(s.o.SignatureKey), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.o.Now))
	if err != nil {
		return nil, &Error{Code: CodeWrongChannel, Err: err}
	}
	return &cl, nil
}

// mintJWT returns a v5 token for user with the given channels, and its
// expiry.
func (s *Server) mintJWT(hostID, user string, chans []string, now time.Time) (string, time.Time, error) {
	exp := now.Add(s.o.JWTTTL).Truncate(time.Second)
	cl := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: hostID, Subject: user,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Chan: strings.Join(chans, ","),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString([]byte(s.o.SignatureKey))
	return tok, exp, err
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
