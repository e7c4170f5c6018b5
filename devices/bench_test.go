package devices

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"go.etcd.io/bbolt"
)

// seed stores users×perUser devices directly, in one transaction, so the
// benchmarks measure lookups rather than setup.
func seed(b *testing.B, r *Registry, users, perUser int) []string {
	b.Helper()
	names := make([]string, users)
	now := r.opts.Now()
	err := r.db.Update(func(tx *bbolt.Tx) error {
		s, err := openStore(tx)
		if err != nil {
			return err
		}
		for u := range users {
			names[u] = strconv.Itoa(100000 + u)
			for i := range perUser {
				n := u*perUser + i
				d := Device{ID: "dev-" + strconv.Itoa(n), User: names[u], Platform: PlatformAPNs,
					Token: apnsToken(n), AppID: "Bitrix24", Locale: "ru", Timezone: "Europe/Moscow",
					Name: "iPhone", Created: now, Updated: now}
				if err := s.put(d); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return names
}

// BenchmarkListByUsers is the fan-out lookup of a push to 10,000 users,
// 2 devices each (20,000 devices returned per op).
func BenchmarkListByUsers(b *testing.B) {
	r, _ := newRegistry(b)
	users := seed(b, r, 10000, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, err := r.ListByUsers(context.Background(), users)
		if err != nil || len(m) != len(users) {
			b.Fatalf("ListByUsers: %d users, %v", len(m), err)
		}
	}
}

// BenchmarkRegister re-registers devices of a 20,000-device registry (the
// common case: an app refreshing its token on start), with fsync on commit.
func BenchmarkRegister(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "nosync"
		if sync {
			name = "fsync"
		}
		b.Run(name, func(b *testing.B) {
			db := openDB(b, filepath.Join(b.TempDir(), "bench.db"), !sync)
			defer db.Close()
			clk := newClock()
			r, err := Open(db, Options{Now: clk.Now, PurgeInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			users := seed(b, r, 10000, 2)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				n := i % 20000
				d := Device{ID: "dev-" + strconv.Itoa(n), User: users[n/2], Platform: PlatformAPNs,
					Token: apnsToken(n), AppID: "Bitrix24", Locale: "ru"}
				if _, err := r.Register(context.Background(), d); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
