package kvregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

// Get returns the device with id, or devices.ErrNotFound. A device whose
// token another device took is not found, and one whose VoIP token was
// taken comes without it, exactly as in the embedded registry.
func (r *Registry) Get(ctx context.Context, id string) (devices.Device, error) {
	if err := ctx.Err(); err != nil {
		return devices.Device{}, err
	}
	d, err := r.get(ctx, id)
	if err != nil {
		return devices.Device{}, fmt.Errorf("kvregistry: get %s: %w", id, err)
	}
	return d, nil
}

func (r *Registry) get(ctx context.Context, id string) (devices.Device, error) {
	rec, _, ok, err := r.getRecord(ctx, id)
	if err != nil {
		return devices.Device{}, err
	}
	if !ok {
		return devices.Device{}, devices.ErrNotFound
	}
	d, live, err := r.verify(ctx, rec, true)
	if err != nil {
		return devices.Device{}, err
	}
	if !live {
		return devices.Device{}, devices.ErrNotFound
	}
	return d, nil
}

// FindByToken returns the device holding token as its token or its VoIP
// token, or devices.ErrNotFound. An unknown platform is a
// *devices.ValidationError.
func (r *Registry) FindByToken(ctx context.Context, platformName, token string) (devices.Device, error) {
	if err := ctx.Err(); err != nil {
		return devices.Device{}, err
	}
	token, err := normalizeToken(platformName, token)
	if err != nil {
		return devices.Device{}, err
	}
	d, _, _, err := r.holder(ctx, platformName, token)
	if err != nil {
		return devices.Device{}, fmt.Errorf("kvregistry: find token %s: %w", redact(token), err)
	}
	return d, nil
}

// holder returns the device holding token, as readers see it, and its
// record at revision rev.
func (r *Registry) holder(ctx context.Context, platformName, token string) (d devices.Device, rec record, rev uint64, err error) {
	te, _, ok, err := r.getToken(ctx, platformName, token)
	if err != nil {
		return devices.Device{}, record{}, 0, err
	}
	if !ok || te.ID == "" {
		return devices.Device{}, record{}, 0, devices.ErrNotFound
	}
	rec, rev, ok, err = r.getRecord(ctx, te.ID)
	if err != nil {
		return devices.Device{}, record{}, 0, err
	}
	// A key naming a device whose record lacks the token is a claim whose
	// registration has not written its record yet, or never will.
	if !ok || rec.Platform != platformName || (rec.Token != token && rec.VoIPToken != token) {
		return devices.Device{}, record{}, 0, devices.ErrNotFound
	}
	d, live, err := r.verify(ctx, rec, true)
	if err != nil {
		return devices.Device{}, record{}, 0, err
	}
	if !live {
		return devices.Device{}, record{}, 0, devices.ErrNotFound
	}
	return d, rec, rev, nil
}

func normalizeToken(platformName, token string) (string, error) {
	if !slices.Contains(devices.Platforms(), platformName) {
		return "", &devices.ValidationError{Field: "platform", Message: "unknown platform " + platformName}
	}
	return devices.Normalize(devices.Device{Platform: platformName, Token: token}).Token, nil
}

// ListByUser returns the user's devices ordered by id; none is an empty
// result, not an error.
func (r *Registry) ListByUser(ctx context.Context, user string) ([]devices.Device, error) {
	m, err := r.ListByUsers(ctx, []string{user})
	return m[user], err
}

// ListByUsers returns the devices of each user, each user's ordered by id.
// Users without devices are absent from the map; duplicates in users are
// read once. It reads in three batched direct gets (the users' indexes,
// their devices, the devices' token owners; 1000 keys per request); on a
// server without batched gets, users are read Options.ReadConcurrency at
// a time, each with one index read, then one read per device and per
// token. The result is
// not one snapshot, but a device appears only under the user its record
// names and only while its token's key names it, so no token is listed
// for two devices.
func (r *Registry) ListByUsers(ctx context.Context, users []string) (map[string][]devices.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uniq := make([]string, 0, len(users))
	seen := make(map[string]struct{}, len(users))
	for _, u := range users {
		if _, dup := seen[u]; dup || u == "" {
			continue
		}
		seen[u] = struct{}{}
		uniq = append(uniq, u)
	}
	if len(uniq) == 0 {
		return map[string][]devices.Device{}, nil
	}
	out, err := r.listBatched(ctx, uniq)
	if !errors.Is(err, errNoBatch) {
		if err != nil {
			return nil, fmt.Errorf("kvregistry: list: %w", err)
		}
		return out, nil
	}
	results := make([][]devices.Device, len(uniq))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.opts.ReadConcurrency, len(uniq)) {
		wg.Go(func() {
			for i := range next {
				ds, err := r.listUser(ctx, uniq[i])
				if err != nil {
					cancel(err)
					continue
				}
				results[i] = ds
			}
		})
	}
feed:
	for i := range uniq {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("kvregistry: list: %w", err)
	}
	out = make(map[string][]devices.Device, len(uniq))
	for i, ds := range results {
		if len(ds) > 0 {
			out[uniq[i]] = ds
		}
	}
	return out, nil
}

// listUser reads one user's index and the devices it names.
func (r *Registry) listUser(ctx context.Context, user string) ([]devices.Device, error) {
	doc, _, ok, err := r.getUser(ctx, user)
	if err != nil || !ok {
		return nil, err
	}
	var out []devices.Device
	for _, e := range doc.Devices {
		rec, _, ok, err := r.getRecord(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		if !ok || rec.User != user {
			r.repairEntry(ctx, user, e)
			continue
		}
		d, live, err := r.verify(ctx, rec, true)
		if err != nil {
			return nil, err
		}
		if live {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b devices.Device) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// repairEntry removes an index entry whose device is gone or moved, once
// it is older than any registration still in flight could be.
func (r *Registry) repairEntry(ctx context.Context, user string, e userEntry) {
	if r.opts.RepairAfter < 0 || r.opts.Now().Sub(e.Added) < r.opts.RepairAfter {
		return
	}
	if err := r.removeFromUser(ctx, user, e.ID, e.Claim); err != nil {
		r.opts.Logger.Warn("kvregistry: repair of a stale index entry failed", "device", e.ID, "err", err)
	}
}

// Remove deletes the device with id and returns it, or
// devices.ErrNotFound.
func (r *Registry) Remove(ctx context.Context, id string) (devices.Device, error) {
	if err := ctx.Err(); err != nil {
		return devices.Device{}, err
	}
	var d devices.Device
	err := r.retry(ctx, func() error {
		rec, rev, ok, err := r.getRecord(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return devices.ErrNotFound
		}
		view, live, err := r.verify(ctx, rec, false)
		if err != nil {
			return err
		}
		if err := r.deleteRecord(ctx, rec, rev); err != nil {
			return err
		}
		if !live {
			// It was already gone for readers; its leftovers are now too.
			return devices.ErrNotFound
		}
		d = view
		return nil
	})
	if err != nil {
		return devices.Device{}, fmt.Errorf("kvregistry: remove %s: %w", id, err)
	}
	return d, nil
}

// deleteRecord deletes rec at revision rev, then releases its token keys
// and index entry. Record first: a crash after it leaves only keys and an
// entry that name a missing device.
func (r *Registry) deleteRecord(ctx context.Context, rec record, rev uint64) error {
	err := r.devices.Delete(ctx, idKey(rec.ID), jetstream.LastRevision(rev))
	if isConflict(err) {
		return errConflict
	}
	if err != nil {
		return storageErr(ctx, err)
	}
	var errs []error
	for _, tok := range [...]string{rec.Token, rec.VoIPToken} {
		if tok != "" {
			errs = append(errs, r.releaseToken(ctx, rec.Platform, tok, rec.ID, rec.Claim))
		}
	}
	errs = append(errs, r.removeFromUser(ctx, rec.User, rec.ID, rec.Claim))
	if err := errors.Join(errs...); err != nil {
		r.logCleanup("release deleted device's keys", rec.ID, "", err)
	}
	return nil
}

// RemoveToken forgets a token a provider reported dead. When it is a
// device's token, the device is deleted; when it is a VoIP token, only
// that token is cleared. It returns the device as it was before, or
// devices.ErrNotFound. An unknown platform is a *devices.ValidationError.
func (r *Registry) RemoveToken(ctx context.Context, platformName, token string) (devices.Device, error) {
	if err := ctx.Err(); err != nil {
		return devices.Device{}, err
	}
	token, err := normalizeToken(platformName, token)
	if err != nil {
		return devices.Device{}, err
	}
	var d devices.Device
	err = r.retry(ctx, func() error {
		view, rec, rev, err := r.holder(ctx, platformName, token)
		if err != nil {
			return err
		}
		if rec.Token == token {
			if err := r.deleteRecord(ctx, rec, rev); err != nil {
				return err
			}
		} else if err := r.clearVoIP(ctx, rec, rev); err != nil {
			return err
		}
		d = view
		return nil
	})
	if err != nil {
		return devices.Device{}, fmt.Errorf("kvregistry: remove token %s: %w", redact(token), err)
	}
	return d, nil
}

// clearVoIP removes rec's VoIP token at revision rev, then releases the
// token's key if it still records this device's claim.
func (r *Registry) clearVoIP(ctx context.Context, rec record, rev uint64) error {
	kept := rec
	kept.VoIPToken = ""
	val, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	_, err = r.devices.Update(ctx, idKey(rec.ID), val, rev)
	if isConflict(err) {
		return errConflict
	}
	if err != nil {
		return storageErr(ctx, err)
	}
	if err := r.releaseToken(ctx, rec.Platform, rec.VoIPToken, rec.ID, rec.Claim); err != nil {
		r.logCleanup("release cleared VoIP token", rec.ID, rec.VoIPToken, err)
	}
	return nil
}
