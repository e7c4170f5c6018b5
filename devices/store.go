package devices

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
)

// store is the registry's view of one transaction. Its methods keep the
// record and its three indexes in step; nothing else writes the buckets.
type store struct {
	records, ids, tokens, stale *bbolt.Bucket
}

func openStore(tx *bbolt.Tx) (store, error) {
	s := store{
		records: tx.Bucket([]byte(bucketRecords)),
		ids:     tx.Bucket([]byte(bucketIDs)),
		tokens:  tx.Bucket([]byte(bucketTokens)),
		stale:   tx.Bucket([]byte(bucketStale)),
	}
	if s.records == nil || s.ids == nil || s.tokens == nil || s.stale == nil {
		return store{}, fmt.Errorf("%w: buckets missing", errCorrupt)
	}
	return s, nil
}

// get loads a device by id.
func (s store) get(id string) (Device, bool, error) {
	user := s.ids.Get([]byte(id))
	if user == nil {
		return Device{}, false, nil
	}
	key := recordKey(string(user), id)
	val := s.records.Get(key)
	if val == nil {
		return Device{}, false, fmt.Errorf("%w: id %q indexed without record", errCorrupt, id)
	}
	d, err := decodeRecord(key, val, "")
	return d, err == nil, err
}

// holder loads the device holding a token (as token or VoIP token).
func (s store) holder(platformName, token string) (Device, bool, error) {
	id := s.tokens.Get(tokenKey(platformName, token))
	if id == nil {
		return Device{}, false, nil
	}
	return s.get(string(id))
}

// put writes d and its index entries. The caller has removed any previous
// version of d (delete) and any other holder of its tokens.
func (s store) put(d Device) error {
	id := []byte(d.ID)
	if err := s.records.Put(recordKey(d.User, d.ID), encodeRecord(d)); err != nil {
		return err
	}
	if err := s.ids.Put(id, []byte(d.User)); err != nil {
		return err
	}
	for _, tok := range [...]string{d.Token, d.VoIPToken} {
		if tok == "" {
			continue
		}
		if err := s.tokens.Put(tokenKey(d.Platform, tok), id); err != nil {
			return err
		}
	}
	return s.stale.Put(staleKey(d.Updated, d.ID), []byte{})
}

// delete removes d and its index entries. A token entry is removed only if
// it still points at d, so deleting a device never strips a token that has
// already moved to another one.
func (s store) delete(d Device) error {
	id := []byte(d.ID)
	if err := s.records.Delete(recordKey(d.User, d.ID)); err != nil {
		return err
	}
	if err := s.ids.Delete(id); err != nil {
		return err
	}
	for _, tok := range [...]string{d.Token, d.VoIPToken} {
		if tok == "" {
			continue
		}
		k := tokenKey(d.Platform, tok)
		if bytes.Equal(s.tokens.Get(k), id) {
			if err := s.tokens.Delete(k); err != nil {
				return err
			}
		}
	}
	return s.stale.Delete(staleKey(d.Updated, d.ID))
}
