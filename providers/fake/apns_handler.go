package fake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP answers one push the way APNs does: validation in Apple's
// order of concerns (method, path, auth, headers, payload), then the
// scripted behaviour, then 200 with an apns-id.
func (f *APNs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := APNsRequest{Method: r.Method, Path: r.URL.Path}
	buf, _ := f.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer f.bodies.Put(buf)
	// One byte past the VoIP limit is enough to know the payload is too big.
	if _, err := io.Copy(buf, io.LimitReader(r.Body, APNsMaxVoIPPayload+1)); err != nil {
		return // client went away
	}
	status, reason := f.check(r, buf.Bytes(), &rec)
	if !f.opts.CountOnly {
		rec.Payload = bytes.Clone(buf.Bytes())
	}
	if status == http.StatusOK && f.apnsFault(w, &rec) {
		return
	}
	var b Behavior
	if status == http.StatusOK {
		b = f.behaviorFor(rec.Token)
		if b.Status != 0 {
			status, reason = b.Status, b.Reason
		}
	}
	if b.Delay > 0 {
		t := time.NewTimer(b.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-f.done:
			t.Stop()
			return
		}
	}
	rec.Status, rec.Reason = status, reason
	h := w.Header()
	if b.RetryAfter > 0 {
		secs := int64((b.RetryAfter + time.Second - 1) / time.Second)
		h["Retry-After"] = []string{strconv.FormatInt(secs, 10)}
	}
	if status == http.StatusOK {
		rec.APNsID = r.Header.Get("apns-id")
		if rec.APNsID == "" {
			rec.APNsID = f.newID()
		}
		h["Apns-Id"] = []string{rec.APNsID}
		f.finish(&rec)
		w.WriteHeader(http.StatusOK)
		return
	}
	f.finish(&rec)
	if b.RawBody != "" {
		h["Content-Type"] = []string{"text/html"}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, b.RawBody)
		return
	}
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	if status == http.StatusGone {
		_, _ = fmt.Fprintf(w, `{"reason":%q,"timestamp":%d}`, reason, f.opts.Now().UnixMilli())
		return
	}
	_, _ = fmt.Fprintf(w, `{"reason":%q}`, reason)
}

// check validates the request and fills rec; it returns 200 or the status
// and reason APNs would answer.
func (f *APNs) check(r *http.Request, body []byte, rec *APNsRequest) (int, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, APNsMethodNotAllowed
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || strings.Contains(token, "/") {
		return http.StatusNotFound, APNsBadPath
	}
	rec.Token = token
	if !f.opts.CountOnly {
		rec.Header = make(http.Header)
		for k, v := range r.Header {
			if strings.HasPrefix(k, "Apns-") {
				rec.Header[k] = v
			}
		}
	}
	hdr := func(k string) string {
		if v := r.Header[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	rec.Topic, rec.PushType, rec.Priority = hdr("Apns-Topic"), hdr("Apns-Push-Type"), hdr("Apns-Priority")
	rec.CollapseID, rec.Expiration = hdr("Apns-Collapse-Id"), hdr("Apns-Expiration")
	if token == "" {
		return http.StatusBadRequest, APNsMissingDeviceToken
	}
	if st, reason := f.authenticate(r, rec); st != http.StatusOK {
		return st, reason
	}
	if rec.Topic == "" {
		return http.StatusBadRequest, APNsMissingTopic
	}
	if rec.PushType != "" && !validPushType(rec.PushType) {
		return http.StatusBadRequest, APNsInvalidPushType
	}
	switch rec.Priority {
	case "", "1", "5", "10":
	default:
		return http.StatusBadRequest, APNsBadPriority
	}
	if rec.Expiration != "" {
		if _, err := strconv.ParseInt(rec.Expiration, 10, 64); err != nil {
			return http.StatusBadRequest, APNsBadExpirationDate
		}
	}
	if len(rec.CollapseID) > 64 {
		return http.StatusBadRequest, APNsBadCollapseID
	}
	if id := hdr("Apns-Id"); id != "" && !validUUID(id) {
		return http.StatusBadRequest, APNsBadMessageID
	}
	if !isHex(token) {
		return http.StatusBadRequest, APNsBadDeviceToken
	}
	if len(body) == 0 {
		return http.StatusBadRequest, APNsPayloadEmpty
	}
	limit := APNsMaxPayload
	if rec.PushType == "voip" {
		limit = APNsMaxVoIPPayload
	}
	if len(body) > limit {
		return http.StatusRequestEntityTooLarge, APNsPayloadTooLarge
	}
	return http.StatusOK, ""
}

// authenticate accepts a TLS client certificate (certificate auth) or a
// provider JWT signed by a key added with AddKey.
func (f *APNs) authenticate(r *http.Request, rec *APNsRequest) (int, string) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rec.ClientCertCN = r.TLS.PeerCertificates[0].Subject.CommonName
		return http.StatusOK, ""
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return http.StatusForbidden, APNsMissingProviderToken
	}
	got, reason := f.auth.verify(authz, f.opts.Now())
	rec.KeyID, rec.TeamID = got.keyID, got.teamID
	if !f.opts.CountOnly {
		rec.Bearer = strings.TrimPrefix(authz, "bearer ")
	}
	if reason != "" {
		return http.StatusForbidden, reason
	}
	return http.StatusOK, ""
}

// newID makes a unique apns-id in UUID form from a counter: cheap, and
// distinct across the fake's life.
func (f *APNs) newID() string {
	n := f.nextID.Add(1)
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n)
}

// validPushType reports whether s is an apns-push-type APNs accepts.
func validPushType(s string) bool {
	switch s {
	case "alert", "background", "voip", "location", "complication", "fileprovider",
		"mdm", "liveactivity", "pushtotalk", "widgets", "controls":
		return true
	}
	return false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validUUID checks the 8-4-4-4-12 hex form APNs requires for apns-id.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
			continue
		}
		if !isHex(s[i : i+1]) {
			return false
		}
	}
	return true
}
