package fake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fcmJWTBearerGrant is the OAuth grant type of a service-account assertion
// (RFC 7523), the one Google's 2-legged OAuth flow uses.
const fcmJWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

type fcmServiceAccount struct {
	project string
	email   string
	key     *rsa.PublicKey
}

type fcmIssuedToken struct {
	project string
	expires time.Time
}

// ServiceAccountJSON generates an RSA key and returns a Google
// service-account JSON for projectID whose token_uri points at this fake,
// so that the firebase SDK's real OAuth flow (JWT-bearer grant signed with
// the key) runs against it. Each call makes a new account.
func (f *FCM) ServiceAccountJSON(projectID string) ([]byte, error) {
	if projectID == "" {
		return nil, errors.New("fake: service account needs a project id")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fake: generate service-account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fake: encode service-account key: %w", err)
	}
	idBytes := make([]byte, 20)
	if _, err := rand.Read(idBytes); err != nil {
		return nil, fmt.Errorf("fake: key id: %w", err)
	}
	keyID := hex.EncodeToString(idBytes)
	email := "firebase-adminsdk-" + keyID[:5] + "@" + projectID + ".iam.gserviceaccount.com"

	f.mu.Lock()
	f.accounts[keyID] = &fcmServiceAccount{project: projectID, email: email, key: &key.PublicKey}
	f.mu.Unlock()

	return json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  projectID,
		"private_key_id":              keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   "1" + keyID[:20],
		"auth_uri":                    f.URL() + "/auth",
		"token_uri":                   f.URL() + "/token",
		"auth_provider_x509_cert_url": f.URL() + "/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
}

// handleToken implements the token endpoint for the JWT-bearer grant: the
// assertion must be an RS256 JWT signed by a key this fake issued, with the
// account's email as issuer, this endpoint as audience and a valid lifetime.
func (f *FCM) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fcmOAuthError(w, "invalid_request", "malformed form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != fcmJWTBearerGrant {
		fcmOAuthError(w, "unsupported_grant_type", "grant_type must be "+fcmJWTBearerGrant)
		return
	}
	var acct *fcmServiceAccount
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims,
		func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			f.mu.Lock()
			acct = f.accounts[kid]
			f.mu.Unlock()
			if acct == nil {
				return nil, fmt.Errorf("unknown key id %q", kid)
			}
			return acct.key, nil
		},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithAudience(f.URL()+"/token"),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(f.opts.Now),
		jwt.WithLeeway(time.Minute),
	)
	if err != nil {
		f.opts.Logger.Warn("fake fcm: token grant refused", "err", err)
		fcmOAuthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	if iss, _ := claims.GetIssuer(); iss != acct.email {
		fcmOAuthError(w, "invalid_grant", "Invalid JWT: issuer does not match the key.")
		return
	}
	if scope, _ := claims["scope"].(string); scope == "" {
		fcmOAuthError(w, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	tokBytes := make([]byte, 24)
	if _, err := rand.Read(tokBytes); err != nil {
		http.Error(w, "entropy", http.StatusInternalServerError)
		return
	}
	access := "ya29.fake-" + hex.EncodeToString(tokBytes)
	f.mu.Lock()
	f.tokens[access] = fcmIssuedToken{project: acct.project, expires: f.opts.Now().Add(f.opts.TokenTTL)}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int64(f.opts.TokenTTL / time.Second),
	})
}

func fcmOAuthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// TokensIssued is the number of OAuth access tokens the fake has issued.
func (f *FCM) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens)
}
