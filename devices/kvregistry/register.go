package kvregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

// evictOutcome is what evict did to a device.
type evictOutcome int

const (
	evictNone        evictOutcome = iota // the device does not hold the token, or owns it
	evictDeleted                         // the token was its main token: device deleted
	evictVoIPCleared                     // the token was its VoIP token: only that cleared
)

// Register creates or updates the device with d's id (derived from
// platform and token when empty), after normalizing and validating it
// exactly like devices.Registry.Register; invalid input returns a
// *devices.ValidationError. Results and token moves are those of
// devices.Registry.Register; see the package doc for how they are made
// safe without transactions. Under heavy contention on the same keys it
// returns ErrContention.
func (r *Registry) Register(ctx context.Context, d devices.Device) (devices.Registration, error) {
	if err := ctx.Err(); err != nil {
		return devices.Registration{}, err
	}
	d = devices.Normalize(d)
	if err := devices.Validate(d); err != nil {
		return devices.Registration{}, err
	}
	if d.ID == "" {
		d.ID = devices.DeriveID(d.Platform, d.Token)
	}
	// UTC without a monotonic reading: exactly what a later Get returns.
	now := r.opts.Now().UTC().Round(0)
	var reg devices.Registration
	err := r.retry(ctx, func() error {
		var err error
		reg, err = r.registerOnce(ctx, d, now)
		return err
	})
	if err != nil {
		return devices.Registration{}, fmt.Errorf("kvregistry: register %s: %w", d.ID, err)
	}
	return reg, nil
}

// retry runs fn until it does not lose a compare-and-swap, with a short
// random pause between attempts so that two nodes racing on one key do
// not keep colliding.
func (r *Registry) retry(ctx context.Context, fn func() error) error {
	for attempt := range r.opts.MaxAttempts {
		err := fn()
		if !errors.Is(err, errConflict) {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(attempt+1) * int64(time.Millisecond)))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return ErrContention
}

// heldToken is a token the registering device took from another device.
type heldToken struct{ id, token string }

// registerOnce is one attempt at Register, writing in the order the
// package doc explains. It returns errConflict when the device record
// changed since it was read.
func (r *Registry) registerOnce(ctx context.Context, d devices.Device, now time.Time) (devices.Registration, error) {
	claim := newClaim()
	old, oldRev, found, err := r.getRecord(ctx, d.ID)
	if err != nil {
		return devices.Registration{}, err
	}
	// A record whose token was taken is a device that no longer exists
	// for readers; registering it again creates it anew.
	oldLive := false
	if found {
		if _, oldLive, err = r.verify(ctx, old, false); err != nil {
			return devices.Registration{}, err
		}
	}
	// 1. Index entry first: if the rest fails it is a stale entry readers skip.
	if err := r.addToUser(ctx, d.User, d.ID, claim, now); err != nil {
		return devices.Registration{}, err
	}
	// 2. Token keys: from here on no other device counts as their holder.
	var taken []heldToken
	for _, tok := range [...]string{d.Token, d.VoIPToken} {
		if tok == "" {
			continue
		}
		prev, err := r.claimToken(ctx, d.Platform, tok, d.ID, claim)
		if err != nil {
			return devices.Registration{}, err
		}
		if prev != "" && prev != d.ID {
			taken = append(taken, heldToken{prev, tok})
		}
	}
	// 3. The record, compare-and-swap against what step 0 read.
	rec := record{Device: d, Claim: claim}
	rec.Created, rec.Updated = now, now
	if oldLive {
		rec.Created = old.Created
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return devices.Registration{}, err
	}
	if found {
		_, err = r.devices.Update(ctx, idKey(d.ID), val, oldRev)
	} else {
		_, err = r.devices.Create(ctx, idKey(d.ID), val)
	}
	if isConflict(err) {
		return devices.Registration{}, errConflict
	}
	if err != nil {
		return devices.Registration{}, storageErr(ctx, err)
	}

	// 4. Clean-up. The registration is in force; a failure here leaves
	// only leftovers that readers skip, so it is logged, not returned.
	reg := devices.Registration{Device: rec.Device, Created: !oldLive}
	for _, h := range taken {
		was, out, err := r.evict(ctx, h.id, d.Platform, h.token)
		if err != nil {
			r.logCleanup("evict previous holder", h.id, h.token, err)
			continue
		}
		if out == evictNone {
			continue
		}
		if out == evictDeleted {
			reg.Evicted = append(reg.Evicted, h.id)
		}
		if was.User != d.User && reg.MovedFrom == "" {
			reg.MovedFrom = was.User
		}
		r.opts.Logger.Info("kvregistry: token moved to another device",
			"token", redact(h.token), "from_device", h.id, "from_user", was.User,
			"to_device", d.ID, "to_user", d.User, "from_deleted", out == evictDeleted)
	}
	if oldLive {
		if old.User != d.User {
			reg.MovedFrom = old.User
			r.opts.Logger.Info("kvregistry: device moved to another user",
				"device", d.ID, "from_user", old.User, "to_user", d.User)
		}
		if old.Token != d.Token {
			reg.Replaced = old.Token
		}
	}
	if found {
		for _, tok := range [...]string{old.Token, old.VoIPToken} {
			if tok == "" || old.Platform == d.Platform && (tok == d.Token || tok == d.VoIPToken) {
				continue
			}
			if err := r.releaseToken(ctx, old.Platform, tok, d.ID, old.Claim); err != nil {
				r.logCleanup("release former token", d.ID, tok, err)
			}
		}
		if old.User != d.User {
			if err := r.removeFromUser(ctx, old.User, d.ID, old.Claim); err != nil {
				r.logCleanup("remove former user's index entry", d.ID, "", err)
			}
		}
	}
	// A registration of the same token that claimed it after step 2
	// wins; its clean-up may have run before this record existed, so
	// this device evicts itself the way that registration would have.
	for _, tok := range [...]string{d.Token, d.VoIPToken} {
		if tok == "" {
			continue
		}
		if _, _, err := r.evict(ctx, d.ID, d.Platform, tok); err != nil {
			r.logCleanup("check own token", d.ID, tok, err)
		}
	}
	return reg, nil
}

func (r *Registry) logCleanup(what, id, tok string, err error) {
	r.opts.Logger.Warn("kvregistry: clean-up failed; readers skip what it left",
		"step", what, "device", id, "token", redact(tok), "err", err)
}

// claimToken makes tok's key name id, whatever it named before, and
// returns the device it named (empty when none).
func (r *Registry) claimToken(ctx context.Context, platformName, tok, id, claim string) (string, error) {
	key := tokenKey(platformName, tok)
	val, err := json.Marshal(tokenEntry{ID: id, Token: tok, Claim: claim})
	if err != nil {
		return "", err
	}
	for range r.opts.MaxAttempts {
		te, rev, ok, err := r.getToken(ctx, platformName, tok)
		if err != nil {
			return "", err
		}
		if ok {
			_, err = r.tokens.Update(ctx, key, val, rev)
		} else {
			_, err = r.tokens.Create(ctx, key, val)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			return "", storageErr(ctx, err)
		}
		return te.ID, nil
	}
	return "", ErrContention
}

// evict makes device id stop holding tok unless tok's key names it: the
// device is deleted when tok is its main token, or loses its VoIP token.
// It returns the device as it was and what it did. It is safe at any
// time: a record that holds a token its key does not name can only be
// older than the claim that key records.
func (r *Registry) evict(ctx context.Context, id, platformName, tok string) (devices.Device, evictOutcome, error) {
	for range r.opts.MaxAttempts {
		rec, rev, ok, err := r.getRecord(ctx, id)
		if err != nil || !ok || rec.Platform != platformName || (rec.Token != tok && rec.VoIPToken != tok) {
			return devices.Device{}, evictNone, err
		}
		if owns, err := r.ownsToken(ctx, platformName, tok, id); err != nil || owns {
			return devices.Device{}, evictNone, err
		}
		if rec.Token == tok {
			err = r.deleteRecord(ctx, rec, rev)
			if errors.Is(err, errConflict) {
				continue
			}
			if err != nil {
				return devices.Device{}, evictNone, err
			}
			return rec.Device, evictDeleted, nil
		}
		err = r.clearVoIP(ctx, rec, rev)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return devices.Device{}, evictNone, err
		}
		return rec.Device, evictVoIPCleared, nil
	}
	return devices.Device{}, evictNone, ErrContention
}

// releaseToken deletes tok's key if it still records claim by device id,
// that is, if nobody claimed the token since the record being replaced.
func (r *Registry) releaseToken(ctx context.Context, platformName, tok, id, claim string) error {
	for range r.opts.MaxAttempts {
		te, rev, ok, err := r.getToken(ctx, platformName, tok)
		if err != nil || !ok || te.ID != id || te.Claim != claim {
			return err
		}
		err = r.tokens.Delete(ctx, tokenKey(platformName, tok), jetstream.LastRevision(rev))
		if !isConflict(err) {
			return storageErr(ctx, err)
		}
	}
	return ErrContention
}

// addToUser puts id with a fresh claim into user's index.
func (r *Registry) addToUser(ctx context.Context, user, id, claim string, now time.Time) error {
	return r.editUser(ctx, user, func(doc *userDoc) bool {
		e := userEntry{ID: id, Claim: claim, Added: now}
		i, ok := slices.BinarySearchFunc(doc.Devices, id, func(e userEntry, id string) int {
			return strings.Compare(e.ID, id)
		})
		if ok {
			doc.Devices[i] = e
		} else {
			doc.Devices = slices.Insert(doc.Devices, i, e)
		}
		return true
	})
}

// removeFromUser drops id from user's index if its entry still carries
// claim, so that a newer registration's entry is kept.
func (r *Registry) removeFromUser(ctx context.Context, user, id, claim string) error {
	return r.editUser(ctx, user, func(doc *userDoc) bool {
		i := slices.IndexFunc(doc.Devices, func(e userEntry) bool { return e.ID == id && e.Claim == claim })
		if i < 0 {
			return false
		}
		doc.Devices = slices.Delete(doc.Devices, i, i+1)
		return true
	})
}

// editUser applies edit to user's index with compare-and-swap, retrying
// on conflict. edit returns false when there is nothing to write. An
// index left empty is deleted.
func (r *Registry) editUser(ctx context.Context, user string, edit func(*userDoc) bool) error {
	key := userKey(user)
	for range r.opts.MaxAttempts {
		doc, rev, ok, err := r.getUser(ctx, user)
		if err != nil {
			return err
		}
		doc.User = user
		if !edit(&doc) {
			return nil
		}
		switch {
		case len(doc.Devices) == 0 && ok:
			err = r.users.Delete(ctx, key, jetstream.LastRevision(rev))
		case len(doc.Devices) == 0:
			return nil
		default:
			val, merr := json.Marshal(doc)
			if merr != nil {
				return merr
			}
			if ok {
				_, err = r.users.Update(ctx, key, val, rev)
			} else {
				_, err = r.users.Create(ctx, key, val)
			}
		}
		if !isConflict(err) {
			return storageErr(ctx, err)
		}
	}
	return ErrContention
}
