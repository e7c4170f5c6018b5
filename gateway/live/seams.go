package live

import (
	"context"
	"errors"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

// The seams below let several pushpull nodes share live state. Each has an
// in-process implementation used when Options leave it nil (one node, the
// default); gateway/cluster provides the NATS ones.

// ErrUnavailable wraps a Bus failure: the cluster could not take the
// event (NATS unreachable, no JetStream quorum). The caller may retry.
var ErrUnavailable = errors.New("live: cluster unavailable")

// Bus carries published events to the hub of every node, this one
// included, in one order shared by all nodes, so that a mid means the same
// event on every node and a client may resume on any of them.
type Bus interface {
	// Publish hands ev for channels to every node and returns its mid.
	// When it returns nil the event is accepted: every node will deliver
	// it to its own connections and keep it in its history.
	Publish(ctx context.Context, channels []string, ev *hub.Event) (string, error)
}

// WatchStore holds tag watches (Bitrix's CPullWatch): user watches tag
// until an expiry; an entry stays known (for client extension) for one TTL
// after it expired. The in-process store is the default; a shared one
// makes a watch added through one node count on every node.
type WatchStore interface {
	// Add makes every user watch every tag for ttl from now.
	Add(users, tags []string, ttl time.Duration, now time.Time) error
	// Extend renews existing (even recently expired) watches by their own
	// TTL and reports, per tag, whether any of the users had it.
	Extend(users, tags []string, now time.Time) (map[string]bool, error)
	// Known reports whether user has (or recently had) a watch on tag.
	Known(user, tag string) bool
	// Remove deletes the users' watches on tags (all of theirs when tags
	// is empty) and returns how many it removed.
	Remove(users, tags []string) (int, error)
	// Watchers returns the users whose watch on tag has not expired, sorted.
	Watchers(tag string, now time.Time) []string
	// TagsOf returns user's unexpired tags, sorted.
	TagsOf(user string, now time.Time) []string
	// Sweep drops entries that expired more than one TTL ago.
	Sweep(now time.Time)
}

// SharedPresence tells the other nodes which users this node has online
// (a live connection or a poller whose next poll is due) and answers
// whether another node has a user online. The node's own connections are
// counted by Service itself.
type SharedPresence interface {
	// SetLocal records that this node now has (true) or no longer has
	// (false) user online. Calls come on transitions only.
	SetLocal(user string, online bool)
	// Remote reports whether another live node has user online.
	Remote(user string) bool
}

// AckRelay carries client acks ({"op":"ack"}) between nodes: an event's
// ack_timeout push waits on the node that published it, while the client
// may be connected to any node.
type AckRelay interface {
	// Forward tells the other nodes that user acked mid.
	Forward(user, mid string)
	// Receive sets the function called with the acks other nodes
	// forwarded. It is called once, by New.
	Receive(func(user, mid string))
}

// localBus publishes straight to this process's hub.
type localBus struct{ h *hub.Hub }

func (b localBus) Publish(_ context.Context, channels []string, ev *hub.Event) (string, error) {
	mid, _ := b.h.Publish(channels, ev)
	return mid, nil
}
