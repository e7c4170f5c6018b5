package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
)

// Errors of the service. Callers classify with errors.Is.
var (
	// ErrNotFound: the notification is unknown, or its status records were
	// pruned (or it produced no job at all).
	ErrNotFound = errors.New("push: not found")
	// ErrStopped: the dispatcher was stopped; it cannot be started again.
	ErrStopped = errors.New("push: stopped")
)

// Service accepts notifications (Push, Cancel, Status) and, once started,
// dispatches their jobs. All methods are safe for concurrent use.
type Service struct {
	q     Queue
	reg   Registry
	provs map[string]*provider // by platform
	opts  Options
	log   *slog.Logger

	// kick wakes one idle worker when another found a full batch: the
	// queue's Wakeup has capacity 1 and wakes a single worker.
	kick chan struct{}
	fb   *feedback

	life      sync.Mutex
	started   bool
	stopped   bool
	stopDone  chan struct{}
	leaseCtx  context.Context // cancelled by Stop: no more leasing
	stopLease context.CancelFunc
	sendCtx   context.Context // cancelled when Stop's ctx ends: abort sends
	abort     context.CancelFunc
	workers   sync.WaitGroup
}

// New builds a service over the queue, the device registry and one
// provider per platform. It does not start dispatching (Start). The
// service does not own q, reg or the providers: the caller closes them
// after Stop.
func New(q Queue, reg Registry, provs []providers.Provider, o Options) (*Service, error) {
	if q == nil {
		return nil, fmt.Errorf("%w: queue is nil", ErrInvalidOptions)
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: registry is nil", ErrInvalidOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Service{
		q: q, reg: reg, opts: o, log: o.Logger,
		provs: make(map[string]*provider, len(provs)),
		kick:  make(chan struct{}, 1),
	}
	for i, p := range provs {
		if p == nil {
			return nil, fmt.Errorf("%w: providers[%d] is nil", ErrInvalidOptions, i)
		}
		name := p.Platform()
		if _, dup := s.provs[name]; dup {
			return nil, fmt.Errorf("%w: providers[%d]: a second provider for platform %q", ErrInvalidOptions, i, name)
		}
		s.provs[name] = newProvider(p, o)
	}
	s.fb = newFeedback(o)
	s.leaseCtx, s.stopLease = context.WithCancel(context.Background())
	s.sendCtx, s.abort = context.WithCancel(context.Background())
	return s, nil
}

// Start starts the dispatcher workers and the feedback sender. It returns
// ErrStopped after Stop; a second Start is a no-op.
func (s *Service) Start() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.started {
		return nil
	}
	s.started = true
	s.fb.start()
	for range s.opts.Workers {
		s.workers.Add(1)
		go s.worker()
	}
	return nil
}

// Stop stops leasing, lets the sends in flight finish and settles their
// jobs, then stops the feedback sender after it has sent what is waiting.
// When ctx ends first, sends in flight are abandoned: their jobs stay
// leased and become due again (at least once), and pending feedback is
// dropped. Stop is idempotent; later calls wait for the first to finish.
func (s *Service) Stop(ctx context.Context) error {
	s.life.Lock()
	if s.stopped {
		done := s.stopDone
		s.life.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.stopped = true
	s.stopDone = make(chan struct{})
	s.life.Unlock()
	defer close(s.stopDone)

	s.stopLease()
	finished := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		s.abort()
		<-finished // sends end quickly once their context is cancelled
	}
	s.abort()
	if ferr := s.fb.stop(ctx); err == nil {
		err = ferr
	}
	return err
}

// Cancel removes the queued (not in-flight) jobs of users (empty: every
// user) with tag and/or sub tag, and returns how many it removed.
func (s *Service) Cancel(ctx context.Context, users []string, tag, subTag string) (int, error) {
	if tag == "" && subTag == "" {
		return 0, fieldErr("tag", "tag or sub_tag required")
	}
	for i, u := range users {
		if msg := checkText(u, maxUserLen, true); msg != "" {
			return 0, fieldErr(fmt.Sprintf("users[%d]", i), "%s", msg)
		}
	}
	if msg := checkText(tag, MaxTagLen, false); msg != "" {
		return 0, fieldErr("tag", "%s", msg)
	}
	if msg := checkText(subTag, MaxTagLen, false); msg != "" {
		return 0, fieldErr("sub_tag", "%s", msg)
	}
	n, err := s.q.Cancel(ctx, queue.CancelFilter{Users: users, Tag: tag, SubTag: subTag})
	if err != nil {
		return 0, fmt.Errorf("push: cancel: %w", err)
	}
	return n, nil
}
