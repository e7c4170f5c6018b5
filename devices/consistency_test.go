package devices

import (
	"bytes"
	"testing"

	"go.etcd.io/bbolt"
)

// checkConsistent walks every bucket and fails t when the record and its
// three indexes disagree. newRegistry runs it at cleanup, so every test
// that writes also checks the indexes it leaves behind.
func checkConsistent(t testing.TB, r *Registry) {
	t.Helper()
	err := r.db.View(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		records := 0
		tokens := map[string]string{}
		if err := s.records.ForEach(func(k, v []byte) error {
			records++
			d, err := decodeRecord(k, v, "")
			if err != nil {
				return err
			}
			if got := s.ids.Get([]byte(d.ID)); string(got) != d.User {
				t.Errorf("device %s of %s: ids index says %q", d.ID, d.User, got)
			}
			if s.stale.Get(staleKey(d.Updated, d.ID)) == nil {
				t.Errorf("device %s: no stale index entry", d.ID)
			}
			for _, tok := range []string{d.Token, d.VoIPToken} {
				if tok == "" {
					continue
				}
				k := string(tokenKey(d.Platform, tok))
				if prev, dup := tokens[k]; dup {
					t.Errorf("token held by %s and %s", prev, d.ID)
				}
				tokens[k] = d.ID
				if got := s.tokens.Get([]byte(k)); string(got) != d.ID {
					t.Errorf("device %s: token index says %q", d.ID, got)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if n := s.ids.Stats().KeyN; n != records {
			t.Errorf("ids index has %d entries, records %d", n, records)
		}
		if n := s.stale.Stats().KeyN; n != records {
			t.Errorf("stale index has %d entries, records %d", n, records)
		}
		return s.tokens.ForEach(func(k, v []byte) error {
			if tokens[string(k)] != string(v) {
				t.Errorf("dangling token entry %q -> %q", bytes.ReplaceAll(k, []byte{0}, []byte("/")), v)
			}
			return nil
		})
	})
	if err != nil {
		t.Errorf("consistency walk: %v", err)
	}
}
