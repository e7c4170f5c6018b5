package queue

import (
	"context"
	"fmt"
	"runtime"

	"go.etcd.io/bbolt"
)

// op is one caller's write. The committer applies many ops in one bbolt
// transaction, so one fsync serves them all (group commit).
//
// apply may run twice (when another op of its batch fails, the batch is
// rolled back and each op is retried alone): it must reset whatever it
// reports through captured variables and rely only on the transaction.
type op struct {
	writes int // how many records it writes, for MaxBatch
	apply  func(tx *bbolt.Tx, b *buckets, fx *effects) error
	fx     effects
	done   chan error
}

// effects are the in-memory consequences of an op, applied only once its
// transaction has committed.
type effects struct {
	queued, dead                           int
	delivered, retried, expired, deadTotal uint64
	release                                []string // leases to end
	claimed                                []string // pending marks to clear
	wake                                   bool
}

// claim marks a job as being removed by this op so that no Lease hands it
// out between this transaction's snapshot and its commit. It fails when the
// job is leased: cancel and collapse leave jobs in flight alone.
func (q *Queue) claim(fx *effects, id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, leased := q.leases[id]; leased {
		return false
	}
	q.pending[id] = struct{}{}
	fx.claimed = append(fx.claimed, id)
	return true
}

// claimForce marks a job pending even when it is leased (for the lease
// holder's own Ack/Retry/Dead/Drop, which end the lease after commit).
func (q *Queue) claimForce(fx *effects, id string) {
	q.mu.Lock()
	q.pending[id] = struct{}{}
	q.mu.Unlock()
	fx.claimed = append(fx.claimed, id)
}

// do hands an op to the committer and waits until it is durably committed.
// When ctx ends first, do returns ctx's error and the write may or may not
// be committed.
func (q *Queue) do(ctx context.Context, writes int, apply func(tx *bbolt.Tx, b *buckets, fx *effects) error) error {
	o := &op{writes: max(writes, 1), apply: apply, done: make(chan error, 1)}
	q.closeMu.RLock()
	if q.closed {
		q.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case q.ops <- o:
	case <-ctx.Done():
		q.closeMu.RUnlock()
		return ctx.Err()
	}
	q.closeMu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitLoop owns all writes. It blocks for one op, takes every op already
// waiting (up to MaxBatch records), commits them in one transaction and
// answers them all. Writers that arrive during an fsync form the next
// batch, so the batch size follows the load without any timer.
func (q *Queue) commitLoop() {
	defer q.commitW.Done()
	var batch []*op
	for {
		o, ok := <-q.ops
		if !ok {
			return
		}
		// Let the callers woken by the previous commit run and hand in
		// their next writes before this batch is cut: with fewer cores than
		// callers they would otherwise miss it and commits would alternate
		// between full and nearly empty. With nothing else runnable this
		// returns at once.
		runtime.Gosched()
		batch = append(batch[:0], o)
		n := o.writes
		open := true
	drain:
		for n < q.opts.MaxBatch {
			select {
			case o, ok := <-q.ops:
				if !ok {
					open = false
					break drain
				}
				batch = append(batch, o)
				n += o.writes
			default:
				break drain
			}
		}
		q.commit(batch)
		clear(batch)
		if !open {
			return
		}
	}
}

func (q *Queue) commit(batch []*op) {
	applied := false // every op applied: a failure is bbolt's, not an op's
	err := q.db.Update(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		for _, o := range batch {
			o.fx = effects{}
			if err := o.apply(tx, b, &o.fx); err != nil {
				return err
			}
		}
		applied = true
		return nil
	})
	if err == nil {
		q.commits.Add(1)
		q.committedOps.Add(uint64(len(batch)))
		for _, o := range batch {
			q.settle(&o.fx, true)
			o.done <- nil
		}
		return
	}
	for _, o := range batch {
		q.settle(&o.fx, false)
	}
	if len(batch) == 1 {
		if applied {
			// bbolt keeps only the text of some file errors ("file resize
			// error: ..."), so the class is given here.
			err = fmt.Errorf("%w: %w", ErrStorage, err)
		}
		batch[0].done <- fmt.Errorf("queue: commit: %w", err)
		return
	}
	// One op's error must not fail the others: retry each alone.
	for _, o := range batch {
		q.commit([]*op{o})
	}
}

// settle applies an op's effects after its transaction ended. Pending
// marks are cleared only now, after Commit returned, so that a Lease that
// no longer sees the mark reads a snapshot that has the change.
func (q *Queue) settle(fx *effects, committed bool) {
	q.mu.Lock()
	for _, id := range fx.claimed {
		delete(q.pending, id)
	}
	if committed {
		for _, id := range fx.release {
			delete(q.leases, id)
		}
		q.queued += fx.queued
		q.dead += fx.dead
	}
	q.mu.Unlock()
	if !committed {
		return
	}
	q.delivered.Add(fx.delivered)
	q.retried.Add(fx.retried)
	q.expired.Add(fx.expired)
	q.deadTotal.Add(fx.deadTotal)
	if fx.wake {
		q.signal()
	}
}
