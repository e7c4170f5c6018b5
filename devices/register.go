package devices

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Registration is what Register did.
type Registration struct {
	// Device is the device as stored, with ID, Created and Updated set.
	Device Device
	// Created is true when no device with this id existed before.
	Created bool
	// MovedFrom is the previous owner when the device id, or one of its
	// tokens, belonged to another user before this call; empty otherwise.
	// That user will no longer receive pushes on this device.
	MovedFrom string
	// Replaced is the previous token when the same device id was registered
	// before with a different token.
	Replaced string
	// Evicted lists the ids of other devices deleted because their token now
	// belongs to this one (an app reinstalled with a new device id, or a
	// device registered first without an id and then with one).
	Evicted []string
}

// Register creates or updates the device with d's id (derived from platform
// and token when empty), after normalizing and validating it; invalid input
// returns a *ValidationError. Updated is set to now on every call; Created
// is kept from the first registration.
//
// A token belongs to one device, and so one user, at a time: when d's token
// or VoIP token is held by another device, that device is deleted (its
// token was taken) or loses just its VoIP token. A device id registered by a
// new user moves to that user. Either way the old owner stops getting
// pushes meant for the new one, and Registration reports it.
func (r *Registry) Register(ctx context.Context, d Device) (Registration, error) {
	if err := ctx.Err(); err != nil {
		return Registration{}, err
	}
	d = Normalize(d)
	if err := Validate(d); err != nil {
		return Registration{}, err
	}
	if d.ID == "" {
		d.ID = DeriveID(d.Platform, d.Token)
	}
	// UTC without a monotonic reading: exactly what a later Get returns.
	now := r.opts.Now().UTC().Round(0)
	var reg Registration
	err := r.update(func(tx *bbolt.Tx) error {
		reg = Registration{}
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		for _, tok := range [...]string{d.Token, d.VoIPToken} {
			if tok == "" {
				continue
			}
			if err := r.takeToken(s, d, tok, &reg); err != nil {
				return err
			}
		}
		old, found, err := s.get(d.ID)
		if err != nil {
			return err
		}
		if found {
			if err := s.delete(old); err != nil {
				return err
			}
			d.Created = old.Created
			if old.User != d.User {
				reg.MovedFrom = old.User
				r.opts.Logger.Info("devices: device moved to another user",
					"device", d.ID, "from_user", old.User, "to_user", d.User)
			}
			if old.Token != d.Token {
				reg.Replaced = old.Token
			}
		} else {
			d.Created = now
			reg.Created = true
		}
		d.Updated = now
		reg.Device = d
		return s.put(d)
	})
	if err != nil {
		return Registration{}, fmt.Errorf("devices: register %s: %w", d.ID, err)
	}
	return reg, nil
}

// takeToken detaches tok from whichever other device holds it.
func (r *Registry) takeToken(s store, d Device, tok string, reg *Registration) error {
	h, ok, err := s.holder(d.Platform, tok)
	if err != nil || !ok || h.ID == d.ID {
		return err
	}
	if err := s.delete(h); err != nil {
		return err
	}
	if h.Token == tok {
		reg.Evicted = append(reg.Evicted, h.ID)
	} else {
		h.VoIPToken = ""
		if err := s.put(h); err != nil {
			return err
		}
	}
	if h.User != d.User && reg.MovedFrom == "" {
		reg.MovedFrom = h.User
	}
	r.opts.Logger.Info("devices: token moved to another device",
		"token", redact(tok), "from_device", h.ID, "from_user", h.User,
		"to_device", d.ID, "to_user", d.User, "from_deleted", h.Token == tok)
	return nil
}

// Remove deletes the device with id and returns it, or ErrNotFound.
func (r *Registry) Remove(ctx context.Context, id string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	var d Device
	err := r.update(func(tx *bbolt.Tx) error {
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
		return s.delete(d)
	})
	if err != nil {
		return Device{}, fmt.Errorf("devices: remove %s: %w", id, err)
	}
	return d, nil
}

// RemoveToken forgets a token a provider reported dead. When it is a
// device's token, the device is deleted; when it is a VoIP token, only that
// token is cleared. It returns the device as it was before, or ErrNotFound.
// An unknown platform is a *ValidationError.
func (r *Registry) RemoveToken(ctx context.Context, platformName, token string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	spec, ok := platformSpec(platformName)
	if !ok {
		return Device{}, &ValidationError{"platform", "unknown platform " + platformName}
	}
	token = spec.normalize(token)
	var d Device
	err := r.update(func(tx *bbolt.Tx) error {
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
		if err := s.delete(d); err != nil {
			return err
		}
		if d.Token == token {
			return nil
		}
		kept := d
		kept.VoIPToken = ""
		return s.put(kept)
	})
	if err != nil {
		return Device{}, fmt.Errorf("devices: remove token %s: %w", redact(token), err)
	}
	return d, nil
}
