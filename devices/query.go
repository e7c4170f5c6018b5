package devices

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// ctxCheckEvery is how many users ListByUsers reads between context checks.
const ctxCheckEvery = 256

// chunkSize is how many devices ListByUsers allocates at a time.
const chunkSize = 256

// Get returns the device with id, or ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	var d Device
	err := r.db.View(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		var ok bool
		if d, ok, err = s.get(id); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return Device{}, fmt.Errorf("devices: get %s: %w", id, err)
	}
	return d, nil
}

// ListByUser returns the user's devices ordered by id; none is an empty
// result, not an error.
func (r *Registry) ListByUser(ctx context.Context, user string) ([]Device, error) {
	m, err := r.ListByUsers(ctx, []string{user})
	return m[user], err
}

// ListByUsers returns the devices of each user, read in one transaction so
// that the result is one consistent snapshot. Users without devices are
// absent from the map; duplicates in users are read once. Each user costs
// one B+tree seek, so ten thousand users is cheap enough for fan-out.
func (r *Registry) ListByUsers(ctx context.Context, users []string) (map[string][]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]Device, len(users))
	err := r.db.View(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		c := s.records.Cursor()
		var prefix []byte
		// Each user's devices are appended at the end of a shared chunk and
		// handed out as a full slice expression, so a fan-out costs one
		// allocation per chunk rather than one or two per user. A caller
		// appending to one user's slice gets a copy, never a neighbour's
		// devices.
		var chunk []Device
		for i, u := range users {
			if i%ctxCheckEvery == ctxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if _, seen := out[u]; seen || u == "" {
				continue
			}
			prefix = append(append(prefix[:0], u...), 0)
			start := len(chunk)
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				d, err := decodeRecord(k, v, u)
				if err != nil {
					return err
				}
				if len(chunk) == cap(chunk) {
					// Move this user's devices so far to a fresh chunk.
					next := make([]Device, 0, max(chunkSize, 2*(len(chunk)-start)))
					chunk = append(next, chunk[start:]...)
					start = 0
				}
				chunk = append(chunk, d)
			}
			if len(chunk) > start {
				out[u] = chunk[start:len(chunk):len(chunk)]
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("devices: list: %w", err)
	}
	return out, nil
}

// FindByToken returns the device holding token as its token or its VoIP
// token, or ErrNotFound. An unknown platform is a *ValidationError.
func (r *Registry) FindByToken(ctx context.Context, platformName, token string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	spec, ok := platformSpec(platformName)
	if !ok {
		return Device{}, &ValidationError{"platform", "unknown platform " + platformName}
	}
	token = spec.normalize(token)
	var d Device
	err := r.db.View(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		var ok bool
		if d, ok, err = s.holder(platformName, token); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return Device{}, fmt.Errorf("devices: find token %s: %w", redact(token), err)
	}
	return d, nil
}

// Count returns the number of registered devices.
func (r *Registry) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := r.db.View(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		n = s.ids.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("devices: count: %w", err)
	}
	return n, nil
}
