package fake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// providerTokenTTL is how old a provider JWT's iat may be: APNs refuses
// tokens issued more than an hour ago.
const providerTokenTTL = time.Hour

// maxSeenJWTs bounds the cache of verified JWTs; a client renews its token
// every 50 minutes, so a handful per key is normal.
const maxSeenJWTs = 4096

// NewAPNsKey generates a provider signing key (ECDSA P-256) and returns it
// as a PKCS#8 PEM ".p8" file body, with its public half for AddKey.
func NewAPNsKey() (pemBytes []byte, pub *ecdsa.PublicKey, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("fake: generate APNs key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("fake: encode APNs key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), &key.PublicKey, nil
}

type apnsKey struct {
	teamID string
	pub    *ecdsa.PublicKey
}

type verifiedJWT struct {
	keyID, teamID string
	issuedAt      time.Time
}

// jwtVerifier checks provider tokens. A signature is verified once per
// distinct JWT (as a client reuses one token for up to an hour); the age is
// checked on every request.
type jwtVerifier struct {
	mu   sync.RWMutex
	keys map[string]apnsKey
	seen map[string]verifiedJWT
}

func (v *jwtVerifier) add(keyID, teamID string, pub *ecdsa.PublicKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys[keyID] = apnsKey{teamID: teamID, pub: pub}
	clear(v.seen) // a replaced key must not keep old verdicts alive
}

var errBadProviderToken = errors.New("invalid provider token")

// verify returns the token's identity, or the APNs reason to refuse it.
func (v *jwtVerifier) verify(authz string, now time.Time) (verifiedJWT, string) {
	raw, ok := strings.CutPrefix(authz, "bearer ")
	if !ok {
		return verifiedJWT{}, APNsMissingProviderToken
	}
	v.mu.RLock()
	got, hit := v.seen[raw]
	v.mu.RUnlock()
	if !hit {
		var err error
		if got, err = v.parse(raw); err != nil {
			return verifiedJWT{}, APNsInvalidProviderToken
		}
		v.mu.Lock()
		if len(v.seen) >= maxSeenJWTs {
			clear(v.seen)
		}
		v.seen[raw] = got
		v.mu.Unlock()
	}
	if now.Sub(got.issuedAt) > providerTokenTTL {
		return got, APNsExpiredProviderToken
	}
	return got, ""
}

func (v *jwtVerifier) parse(raw string) (verifiedJWT, error) {
	var out verifiedJWT
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		v.mu.RLock()
		k, ok := v.keys[kid]
		v.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w: unknown kid %q", errBadProviderToken, kid)
		}
		if claims.Issuer != k.teamID {
			return nil, fmt.Errorf("%w: iss %q is not the key's team", errBadProviderToken, claims.Issuer)
		}
		out.keyID, out.teamID = kid, k.teamID
		return k.pub, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}))
	if err != nil {
		return verifiedJWT{}, err
	}
	if claims.IssuedAt == nil {
		return verifiedJWT{}, fmt.Errorf("%w: no iat", errBadProviderToken)
	}
	out.issuedAt = claims.IssuedAt.Time
	return out, nil
}
