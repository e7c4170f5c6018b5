package kvstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("kvstate: closed")

// bindBucket returns the bucket, creating it when missing; a bucket
// another node created at the same moment is used as is, and so is an
// existing bucket with another configuration (its owner decided).
func bindBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, cfg.Bucket)
	}
	return kv, err
}

// follower feeds every entry of a bucket (current values, then updates,
// deletes and purges) to apply, from one goroutine it owns.
type follower struct {
	w    jetstream.KeyWatcher
	done chan struct{}
}

// follow starts watching kv and returns once the initial values have been
// applied. life must outlive the follower: the ordered consumer under the
// watcher uses it to re-create itself after a reconnect. wait bounds only
// the initial load.
func follow(life, wait context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry)) (*follower, error) {
	w, err := kv.WatchAll(life)
	if err != nil {
		return nil, fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	f := &follower{w: w, done: make(chan struct{})}
	ready := make(chan struct{})
	go f.run(ready, apply)
	select {
	case <-ready:
		return f, nil
	case <-f.done:
		return nil, fmt.Errorf("watch bucket %s: watcher closed before the initial values: %w", kv.Bucket(), ErrClosed)
	case <-wait.Done():
		f.stop()
		return nil, fmt.Errorf("watch bucket %s: initial values: %w", kv.Bucket(), wait.Err())
	}
}

// run drains the watcher until its channel closes. It must keep draining
// until then: the client's delivery goroutine blocks on a full channel,
// and Stop only closes it once that goroutine is free.
func (f *follower) run(ready chan struct{}, apply func(jetstream.KeyValueEntry)) {
	defer close(f.done)
	for e := range f.w.Updates() {
		if e == nil {
			if ready != nil {
				close(ready)
				ready = nil
			}
			continue
		}
		apply(e)
	}
}

// stop ends the watcher and waits for the goroutine. The channel also
// closes when the connection is closed, so stop never hangs on a dead
// connection. With NATS unreachable but the connection reconnecting, the
// client's deletion of the watcher's consumer makes Stop wait for its
// JetStream API timeout (5s by default) before returning.
func (f *follower) stop() {
	_ = f.w.Stop() // fails only when the connection already closed the subscription
	<-f.done
}

// isConflict reports a lost compare-and-swap. Replicated streams report it
// with another code than single-replica ones; jetstream maps both for
// Update and Delete, and Create reports ErrKeyExists.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
