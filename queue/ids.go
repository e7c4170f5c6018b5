package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// IDs makes job ids: 16 hex digits of a strictly increasing unix-nano
// clock, then 8 random hex digits fixed per IDs value, so that ids sort as
// text in creation order (append-mostly inserts) and two processes or nodes
// never produce the same id. Safe for concurrent use; queue engines share
// it so that ids look the same whatever stores them.
type IDs struct {
	now    func() time.Time
	suffix string
	last   atomic.Uint64
}

// NewIDs returns an id source on the clock now.
func NewIDs(now func() time.Time) *IDs {
	var sfx [4]byte
	_, _ = rand.Read(sfx[:]) // never fails (crypto/rand panics instead)
	return &IDs{now: now, suffix: hex.EncodeToString(sfx[:])}
}

// Next returns a new id.
func (g *IDs) Next() string {
	now := uint64(max(g.now().UnixNano(), 0))
	for {
		last := g.last.Load()
		n := max(now, last+1)
		if g.last.CompareAndSwap(last, n) {
			var raw [8]byte
			binary.BigEndian.PutUint64(raw[:], n)
			return hex.EncodeToString(raw[:]) + g.suffix
		}
	}
}

// Seed makes later ids sort after id (an id of this format, e.g. the
// newest stored one), so that a clock that went backwards across a restart
// still yields increasing ids. Other strings are ignored.
func (g *IDs) Seed(id string) {
	var raw [8]byte
	if len(id) < 16 {
		return
	}
	if _, err := hex.Decode(raw[:], []byte(id[:16])); err == nil {
		g.last.Store(binary.BigEndian.Uint64(raw[:]))
	}
}

// Backoff is the full-jitter delay before retry number attempts (1-based):
// frac * min(cap, base * 2^(attempts-1)), with frac in [0, 1).
func Backoff(base, cap time.Duration, attempts int, frac float64) time.Duration {
	window := cap
	if shift := attempts - 1; shift < 62 {
		if w := base << shift; w > 0 && w>>shift == base && w < window {
			window = w
		}
	}
	return time.Duration(frac * float64(window))
}
