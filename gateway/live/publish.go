package live

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
)

// IsOnline reports whether user has a live connection or a poller whose
// next poll is due.
func (s *Service) IsOnline(user string) bool {
	return s.hub.Connections(UserChannel(user)) > 0 || s.online(user, s.o.Now())
}

// recipients resolves an event's users: the listed users and the watchers
// of its tags (at send time), de-duplicated, minus skip_users.
func (s *Service) recipients(e *Event, now time.Time) []string {
	skip := make(map[string]struct{}, len(e.SkipUsers))
	for _, u := range e.SkipUsers {
		skip[u] = struct{}{}
	}
	seen := make(map[string]struct{}, len(e.Users))
	var out []string
	addUser := func(u string) {
		if _, ok := skip[u]; ok {
			return
		}
		if _, ok := seen[u]; ok {
			return
		}
		seen[u] = struct{}{}
		out = append(out, u)
	}
	for _, u := range e.Users {
		addUser(u)
	}
	for _, t := range e.Tags {
		for _, u := range s.watch.Watchers(t, now) {
			addUser(u)
		}
	}
	return out
}

// withServerTime adds server_time and server_time_unix to extra, keeping
// everything else the backend put there.
func withServerTime(extra json.RawMessage, now time.Time) json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"server_time":"`)
	b.WriteString(now.UTC().Format(time.RFC3339))
	b.WriteString(`","server_time_unix":`)
	b.WriteString(strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', -1, 64))
	trimmed := strings.TrimSpace(string(extra))
	inner := ""
	if len(trimmed) >= 2 && trimmed[0] == '{' {
		inner = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
	}
	if inner != "" {
		// The backend's keys go last: on a duplicate key JSON parsers keep the
		// last one, so a backend may set its own server_time.
		b.WriteByte(',')
		b.WriteString(inner)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// Publish sends each event to its recipients' private channels (and the
// shared channel) and queues the push blocks for the recipients who are not
// online. The whole batch is validated first: an invalid event rejects the
// call and nothing is sent.
//
// The pushes are committed (one durable commit for the whole call) before
// any event goes out live: when the queue cannot be written, Publish fails
// having sent nothing, so the caller's retry cannot deliver an event twice.
// Who is online is therefore decided from the connections and pollers just
// before publishing; someone who connects in between gets both the event
// and the push, never neither.
func (s *Service) Publish(ctx context.Context, evs []Event) ([]PublishResult, error) {
	for i := range evs {
		if err := s.Validate(&evs[i]); err != nil {
			if fe, ok := err.(*FieldError); ok {
				return nil, &FieldError{Field: fmt.Sprintf("events[%d].%s", i, fe.Field), Message: fe.Message}
			}
			return nil, err
		}
		if evs[i].Push != nil && s.push == nil {
			return nil, ErrNoPush
		}
	}
	type pending struct {
		channels []string
		ev       *hub.Event
		online   []string
		late     *push.Request // held for ack_timeout
		timeout  time.Duration
	}
	results := make([]PublishResult, len(evs))
	plan := make([]pending, len(evs))
	var reqs []push.Request
	var reqOwner []int // event index of each request
	for i := range evs {
		e := &evs[i]
		now := s.o.Now()
		users := s.recipients(e, now)
		channels := make([]string, 0, len(users)+1)
		for _, u := range users {
			channels = append(channels, UserChannel(u))
		}
		if e.Shared {
			channels = append(channels, SharedChannel)
		}
		expiry := s.o.DefaultEventExpiry
		if e.Expiry != nil {
			expiry = *e.Expiry
		}
		params := e.Params
		if len(params) == 0 {
			params = json.RawMessage("{}")
		}
		p := &plan[i]
		p.channels = channels
		p.ev = &hub.Event{
			Expiry:   expiry,
			ModuleID: strings.ToLower(e.ModuleID),
			Command:  e.Command,
			Params:   params,
			Extra:    withServerTime(e.Extra, now),
		}
		var offline []string
		for _, u := range users {
			// Presence counts every admitted connection and due poller;
			// asking the hub as well would cost a shard lock per recipient.
			if s.online(u, now) {
				p.online = append(p.online, u)
			} else {
				offline = append(offline, u)
			}
		}
		results[i] = PublishResult{Online: append([]string{}, p.online...), Pushed: []string{}, NoDevice: []string{}}
		if e.Push == nil || len(users) == 0 {
			continue
		}
		req := *e.Push
		req.SkipUsers = nil
		req.Devices = nil
		if e.AckTimeout > 0 {
			if len(p.online) > 0 && len(channels) > 0 {
				late := req
				late.WhenOnline = "send"
				p.late, p.timeout = &late, e.AckTimeout
			}
			req.Users, req.WhenOnline = offline, "send"
		} else if req.WhenOnline == "" || req.WhenOnline == "skip" {
			// Online is decided here, from the same connections the
			// event goes to, not left to the push service's view.
			req.Users, req.WhenOnline = offline, "send"
		} else {
			req.Users = users
		}
		if len(req.Users) > 0 {
			reqs = append(reqs, req)
			reqOwner = append(reqOwner, i)
		}
	}
	if len(reqs) > 0 {
		prs, err := s.push.Push(ctx, reqs)
		if err != nil {
			return nil, fmt.Errorf("live: pushes not queued, nothing was published: %w", err)
		}
		for k, pr := range prs {
			r := &results[reqOwner[k]]
			not := map[string]struct{}{}
			for _, u := range pr.SkippedOnline {
				not[u] = struct{}{}
			}
			for _, u := range pr.NoDevice {
				not[u] = struct{}{}
				r.NoDevice = append(r.NoDevice, u)
			}
			for _, u := range reqs[k].Users {
				if _, ok := not[u]; !ok {
					r.Pushed = append(r.Pushed, u)
				}
			}
		}
	}
	for i := range plan {
		p := &plan[i]
		if len(p.channels) == 0 {
			continue
		}
		id, err := s.bus.Publish(ctx, p.channels, p.ev)
		if err != nil {
			// Only a cluster bus fails (the cluster cannot take the event).
			// Events before i went out; the pushes were all queued.
			return nil, fmt.Errorf("%w: event %d not published (%d before it were): %w", ErrUnavailable, i, i, err)
		}
		results[i].ID = id
		if p.late != nil && results[i].ID != "" {
			s.awaitAcks(results[i].ID, p.online, *p.late, p.timeout)
		}
	}
	return results, nil
}

func ids(rs []PublishResult) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.ID)
	}
	return b.String()
}

// awaitAcks holds req for users until they ack mid or timeout passes; then
// the ones who did not ack get it.
func (s *Service) awaitAcks(mid string, users []string, req push.Request, timeout time.Duration) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if len(s.acks) >= s.o.MaxPendingAcks {
		s.o.Logger.Warn("too many events waiting for acks: pushing at once", "pending", len(s.acks))
		timeout = 0
	}
	a := &pendingAck{users: make(map[string]struct{}, len(users)), req: req}
	for _, u := range users {
		a.users[u] = struct{}{}
	}
	s.acks[mid] = a
	a.timer = time.AfterFunc(timeout, func() { s.ackTimedOut(mid) })
}

func (s *Service) ackTimedOut(mid string) {
	s.ackMu.Lock()
	a := s.acks[mid]
	delete(s.acks, mid)
	s.ackMu.Unlock()
	if a == nil || len(a.users) == 0 {
		return
	}
	req := a.req
	req.Users = make([]string, 0, len(a.users))
	for u := range a.users {
		req.Users = append(req.Users, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.push.Push(ctx, []push.Request{req}); err != nil {
		s.o.Logger.Error("push after ack timeout failed", "mid", mid, "users", len(req.Users), "err", err)
	}
}

// Ack records that user saw event mid; a pending ack_timeout push is not
// sent to that user.
// In a cluster, an ack for an event this node does not hold is forwarded
// to the others (the publishing node holds it).
func (s *Service) Ack(user, mid string) {
	if !s.ackLocal(user, mid) && s.relay != nil {
		s.relay.Forward(user, mid)
	}
}

// ackLocal applies an ack to the pending push of mid on this node and
// reports whether this node holds mid.
func (s *Service) ackLocal(user, mid string) bool {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	a := s.acks[mid]
	if a == nil {
		return false
	}
	delete(a.users, user)
	if len(a.users) == 0 {
		a.timer.Stop()
		delete(s.acks, mid)
	}
	return true
}
