package kvregistry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

// record is the value in the devices bucket. Claim is the nonce of the
// registration that wrote it; the device's token keys and user index entry
// carry the same nonce, so that releasing them after this record is
// replaced cannot touch what a newer registration wrote.
type record struct {
	devices.Device
	Claim string `json:"claim"`
}

// tokenEntry is the value in the tokens bucket: the one device that holds
// the token.
type tokenEntry struct {
	ID    string `json:"id"`
	Token string `json:"token"`
	Claim string `json:"claim"`
}

// userDoc is the value in the users bucket: the user's devices, ordered by
// id. One key per user keeps fan-out at one read per user; a user has few
// devices, so rewriting the list with compare-and-swap is cheap.
type userDoc struct {
	User    string      `json:"user"`
	Devices []userEntry `json:"devices"`
}

type userEntry struct {
	ID    string    `json:"id"`
	Claim string    `json:"claim"`
	Added time.Time `json:"added"`
}

// errCorrupt marks a value the registry cannot decode.
var errCorrupt = errors.New("kvregistry: corrupt value")

func idKey(id string) string     { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
func userKey(user string) string { return base64.RawURLEncoding.EncodeToString([]byte(user)) }

// tokenKey hashes the token: tokens may be 4 KiB of any printable text,
// and a key must be short and plain.
func tokenKey(platformName, token string) string {
	sum := sha256.Sum256([]byte(token))
	return platformName + "." + hex.EncodeToString(sum[:])
}

// newClaim returns a fresh registration nonce.
func newClaim() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// isConflict reports a lost compare-and-swap. Replicated streams report it
// with another code than single-replica ones; jetstream maps both for
// Update and Delete, and Create reports ErrKeyExists.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// storageErr classifies a JetStream failure as devices.ErrStorage (the web
// layer answers 503) unless it is the caller's own context ending.
func storageErr(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, errConflict) {
		return err
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return fmt.Errorf("%w: %w", devices.ErrStorage, err)
}

func (r *Registry) getRecord(ctx context.Context, id string) (rec record, rev uint64, ok bool, err error) {
	e, err := r.devices.Get(ctx, idKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, false, nil
	}
	if err != nil {
		return record{}, 0, false, storageErr(ctx, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID != id {
		return record{}, 0, false, fmt.Errorf("%w: device %q", errCorrupt, id)
	}
	return rec, e.Revision(), true, nil
}

func (r *Registry) getToken(ctx context.Context, platformName, token string) (te tokenEntry, rev uint64, ok bool, err error) {
	e, err := r.tokens.Get(ctx, tokenKey(platformName, token))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tokenEntry{}, 0, false, nil
	}
	if err != nil {
		return tokenEntry{}, 0, false, storageErr(ctx, err)
	}
	if err := json.Unmarshal(e.Value(), &te); err != nil {
		// An undecodable owner is no owner: the next claim overwrites it.
		return tokenEntry{}, e.Revision(), true, nil
	}
	if te.Token != token {
		// A SHA-256 collision, or a hand-edited key: not this token's owner.
		te = tokenEntry{}
	}
	return te, e.Revision(), true, nil
}

func (r *Registry) getUser(ctx context.Context, user string) (doc userDoc, rev uint64, ok bool, err error) {
	e, err := r.users.Get(ctx, userKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return userDoc{}, 0, false, nil
	}
	if err != nil {
		return userDoc{}, 0, false, storageErr(ctx, err)
	}
	if err := json.Unmarshal(e.Value(), &doc); err != nil {
		// The index is derived data: an undecodable one is rebuilt by
		// the next registration of this user.
		return userDoc{User: user}, e.Revision(), true, nil
	}
	return doc, e.Revision(), true, nil
}

// ownsToken reports whether the token key of tok names id.
func (r *Registry) ownsToken(ctx context.Context, platformName, tok, id string) (bool, error) {
	te, _, ok, err := r.getToken(ctx, platformName, tok)
	return ok && te.ID == id, err
}

// verify returns the device as readers must see it: not live when its
// token is held by another device (or by none), and without its VoIP
// token when that one is held elsewhere. With repair, a record found
// stale is fixed on the way.
func (r *Registry) verify(ctx context.Context, rec record, repair bool) (devices.Device, bool, error) {
	owns, err := r.ownsToken(ctx, rec.Platform, rec.Token, rec.ID)
	if err != nil {
		return devices.Device{}, false, err
	}
	if !owns {
		if repair {
			r.repairRecord(ctx, rec.ID, rec.Platform, rec.Token)
		}
		return devices.Device{}, false, nil
	}
	d := rec.Device
	if d.VoIPToken != "" {
		owns, err := r.ownsToken(ctx, rec.Platform, rec.VoIPToken, rec.ID)
		if err != nil {
			return devices.Device{}, false, err
		}
		if !owns {
			d.VoIPToken = ""
			if repair {
				r.repairRecord(ctx, rec.ID, rec.Platform, rec.VoIPToken)
			}
		}
	}
	return d, true, nil
}

func (r *Registry) repairRecord(ctx context.Context, id, platformName, tok string) {
	if r.opts.RepairAfter < 0 {
		return
	}
	if _, _, err := r.evict(ctx, id, platformName, tok); err != nil {
		r.opts.Logger.Warn("kvregistry: repair of a stale device failed", "device", id, "token", redact(tok), "err", err)
	}
}

// redact keeps the first 8 characters of a secret for logs.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
