package bitrix

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// phpDate is PHP's date('c').
const phpDate = "2006-01-02T15:04:05-07:00"

// ConfigChannel is a channel entry of the config.
type ConfigChannel struct {
	ID       string `json:"id"`
	PublicID string `json:"public_id,omitempty"`
	Type     string `json:"type"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

// PublicChannel is an entry of config.publicChannels.
type PublicChannel struct {
	UserID    uint64 `json:"user_id"`
	PublicID  string `json:"public_id"`
	Signature string `json:"signature"`
	Start     string `json:"start"`
	End       string `json:"end"`
}

// config is GET /api/v1/bitrix/config?user=42[&version=3|4|5][&host_id=…]:
// a pull.config.get-shaped {"result":{…}} for user 42 with channels derived
// from the signature key, so that a plain PHP app can hand it to the
// official client (client.start(result), or its REST shim).
func (s *Server) config(c echo.Context) error {
	user, err := strconv.ParseUint(c.QueryParam("user"), 10, 64)
	if err != nil || user == 0 {
		return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{
			"code": "invalid_argument", "message": "user: a positive integer user id is required", "field": "user"}})
	}
	version := s.o.ServerVersion
	if v := c.QueryParam("version"); v != "" {
		if version, err = strconv.Atoi(v); err != nil || version < 3 || version > 5 {
			return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{
				"code": "invalid_argument", "message": "version: 3, 4 or 5", "field": "version"}})
		}
	}
	if version >= 5 && !s.signer.HasKey() {
		return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{
			"code": "failed_precondition", "message": "version 5 needs a signature_key (the JWT key)", "field": "version"}})
	}
	cfg, err := s.BuildConfig(user, version, c.QueryParam("host_id"), s.baseURL(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"result": cfg})
}

// baseURL is PublicURL, or the request's own host as a fallback.
func (s *Server) baseURL(c echo.Context) *url.URL {
	if s.o.PublicURL != "" {
		u, _ := url.Parse(s.o.PublicURL)
		return u
	}
	return &url.URL{Scheme: c.Scheme(), Host: c.Request().Host}
}

// BuildConfig returns the config of user for server version (3, 4 or 5)
// with URLs under base.
func (s *Server) BuildConfig(user uint64, version int, hostID string, base *url.URL) (map[string]any, error) {
	now := s.o.Now()
	start, end := now.Format(phpDate), now.Add(ChannelTTL).Format(phpDate)
	prefix := strings.TrimRight(base.String(), "/")
	ws := *base
	ws.Scheme = "ws"
	if base.Scheme == "https" {
		ws.Scheme = "wss"
	}
	wsPrefix := strings.TrimRight(ws.String(), "/")
	server := map[string]any{
		"version": version, "server_enabled": true, "mode": "personal",
		"long_polling": prefix + "/bitrix/sub/", "long_pooling_secure": prefix + "/bitrix/sub/",
		"websocket_enabled": true,
		"websocket":         wsPrefix + "/bitrix/subws/", "websocket_secure": wsPrefix + "/bitrix/subws/",
		"publish_enabled": version > 3,
		"publish":         prefix + "/bitrix/pubweb/", "publish_secure": prefix + "/bitrix/pubweb/",
		"config_timestamp": 0,
	}
	priv := s.signer.DeriveID(kindPrivate, user)
	pub := s.signer.DeriveID(kindPublic, user)
	shared := s.signer.SharedID()
	channels := map[string]any{
		"shared": ConfigChannel{ID: s.signer.SignChannel(shared), Type: "shared", Start: start, End: end},
	}
	out := map[string]any{
		"server":     server,
		"api":        map[string]any{"revision_web": 19, "revision_mobile": 3},
		"channels":   channels,
		"serverTime": now.Format(phpDate),
	}
	switch {
	case version <= 3:
		channels["private"] = ConfigChannel{ID: s.signer.SignChannel(priv), Type: "private", Start: start, End: end}
		out["publicChannels"] = false
	case version == 4:
		channels["private"] = ConfigChannel{ID: s.signer.SignChannel(priv + ":" + pub),
			PublicID: s.signer.SignPublicChannel(pub), Type: "private", Start: start, End: end}
	}
	if version >= 4 {
		uid := strconv.FormatUint(user, 10)
		out["publicChannels"] = map[string]PublicChannel{uid: {UserID: user, PublicID: pub,
			Signature: s.signer.Sign("public:" + pub), Start: start, End: end}}
	}
	if version >= 5 {
		tok, exp, err := s.mintJWT(hostID, strconv.FormatUint(user, 10), []string{shared}, now)
		if err != nil {
			return nil, err
		}
		out["jwt"] = tok
		out["exp"] = exp.Unix()
	}
	return out, nil
}
