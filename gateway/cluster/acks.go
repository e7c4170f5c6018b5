package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Acks is live.AckRelay on a plain NATS subject: an ack is a small
// message to every node, not stored. Losing one (a node disconnected at
// that moment) costs the user a push they did not need, never a missed
// one, so it needs no stream.
type Acks struct {
	nc      *nats.Conn
	subject string
	sub     *nats.Subscription

	mu   sync.RWMutex
	recv func(user, mid string)
	once sync.Once
}

// NewAcks subscribes to subject (default pushpull.acks).
func NewAcks(nc *nats.Conn, subject string) (*Acks, error) {
	if nc == nil {
		return nil, errors.New("cluster: NewAcks: nc is nil")
	}
	if subject == "" {
		subject = "pushpull.acks"
	}
	a := &Acks{nc: nc, subject: subject}
	sub, err := nc.Subscribe(subject, a.handle)
	if err != nil {
		return nil, fmt.Errorf("cluster: acks subscription: %w", err)
	}
	a.sub = sub
	return a, nil
}

// Forward sends user's ack of mid to every node. A failure is dropped
// (see the type's comment).
func (a *Acks) Forward(user, mid string) {
	_ = a.nc.Publish(a.subject, []byte(mid+" "+user))
}

// Receive sets the function given the acks of other nodes.
func (a *Acks) Receive(f func(user, mid string)) {
	a.mu.Lock()
	a.recv = f
	a.mu.Unlock()
}

func (a *Acks) handle(m *nats.Msg) {
	mid, user, ok := strings.Cut(string(m.Data), " ")
	if !ok || mid == "" || user == "" {
		return
	}
	a.mu.RLock()
	f := a.recv
	a.mu.RUnlock()
	if f != nil {
		f(user, mid)
	}
}

// Close unsubscribes. Idempotent.
func (a *Acks) Close() error {
	var err error
	a.once.Do(func() { err = a.sub.Unsubscribe() })
	return err
}
