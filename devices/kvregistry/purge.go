package kvregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

// purgeLoop runs Purge every PurgeInterval until Close.
func (r *Registry) purgeLoop() {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	t := time.NewTicker(r.opts.PurgeInterval)
	defer t.Stop()
	for {
		if n, err := r.Purge(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Error("kvregistry: purge of stale devices failed", "removed", n, "err", err)
		} else if n > 0 {
			r.opts.Logger.Info("kvregistry: stale devices removed", "removed", n)
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// Purge removes every device whose last registration (Updated) is more
// than StaleAfter before now, through Remove (tokens and index go with
// it), and returns how many it removed. It lists the bucket's keys and
// reads the records in batches of 1000; each stale one is read again just
// before its removal, so a device registered again meanwhile is kept
// (only a registration in that last instant could be lost, and the app
// registers again at its next start). With StaleAfter 0 it does nothing.
func (r *Registry) Purge(ctx context.Context) (int, error) {
	if r.opts.StaleAfter <= 0 {
		return 0, nil
	}
	cutoff := r.opts.Now().Add(-r.opts.StaleAfter)
	lister, err := r.devices.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kvregistry: purge: %w", storageErr(ctx, err))
	}
	defer func() { _ = lister.Stop() }()
	removed := 0
	batch := make([]string, 0, multiGetChunk)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		recs, err := r.readRecords(ctx, batch)
		batch = batch[:0]
		if err != nil {
			return err
		}
		for _, raw := range recs {
			var rec record
			if json.Unmarshal(raw, &rec) != nil || rec.ID == "" || !rec.Updated.Before(cutoff) {
				continue
			}
			// Read it again: a registration since the batch read renews it.
			cur, _, ok, err := r.getRecord(ctx, rec.ID)
			if err != nil || !ok || !cur.Updated.Before(cutoff) {
				continue
			}
			if _, err := r.Remove(ctx, rec.ID); err != nil {
				if errors.Is(err, devices.ErrNotFound) {
					continue
				}
				return err
			}
			removed++
		}
		return nil
	}
	for key := range lister.Keys() {
		batch = append(batch, key)
		if len(batch) == multiGetChunk {
			if err := flush(); err != nil {
				return removed, fmt.Errorf("kvregistry: purge: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return removed, fmt.Errorf("kvregistry: purge: %w", err)
	}
	return removed, ctx.Err()
}

// readRecords returns the raw values of the device keys, batched when the
// server allows it.
func (r *Registry) readRecords(ctx context.Context, keys []string) (map[string][]byte, error) {
	out, err := r.multiGet(ctx, r.opts.DevicesBucket, keys)
	if !errors.Is(err, errNoBatch) {
		return out, err
	}
	out = make(map[string][]byte, len(keys))
	for _, k := range keys {
		e, err := r.devices.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, storageErr(ctx, err)
		}
		out[k] = e.Value()
	}
	return out, nil
}
