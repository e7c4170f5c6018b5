package live

import (
	"errors"
	"fmt"
	"time"
)

// ErrForbidden is returned when a client extends a tag it was not granted.
var ErrForbidden = errors.New("live: not allowed")

// AddWatch makes users watch tags for ttl (0 = WatchTTL).
func (s *Service) AddWatch(users, tags []string, ttl time.Duration) error {
	if err := s.checkWatch(users, tags, true); err != nil {
		return err
	}
	if ttl == 0 {
		ttl = s.o.WatchTTL
	}
	if ttl < 0 || ttl > s.o.MaxWatchTTL {
		return fieldErr("ttl", "must be from 1 to %d seconds", int64(s.o.MaxWatchTTL/time.Second))
	}
	return s.watch.Add(users, tags, ttl, s.o.Now())
}

// ExtendWatch renews the users' watches on tags and reports per tag
// whether it existed.
func (s *Service) ExtendWatch(users, tags []string) (map[string]bool, error) {
	if err := s.checkWatch(users, tags, true); err != nil {
		return nil, err
	}
	return s.watch.Extend(users, tags, s.o.Now())
}

// DeleteWatch removes the users' watches on tags (all of theirs if none)
// and returns how many it removed.
func (s *Service) DeleteWatch(users, tags []string) (int, error) {
	if err := s.checkWatch(users, tags, false); err != nil {
		return 0, err
	}
	return s.watch.Remove(users, tags)
}

// Watchers returns the users watching tag now.
func (s *Service) Watchers(tag string) []string {
	return s.watch.Watchers(tag, s.o.Now())
}

// WatchedTags returns the tags user watches now.
func (s *Service) WatchedTags(user string) []string {
	return s.watch.TagsOf(user, s.o.Now())
}

func (s *Service) checkWatch(users, tags []string, needTags bool) error {
	if len(users) == 0 {
		return fieldErr("users", "at least one user is required")
	}
	if needTags && len(tags) == 0 {
		return fieldErr("tags", "at least one tag is required")
	}
	if err := checkIDs("users", users); err != nil {
		return err
	}
	return checkIDs("tags", tags)
}

// ClientExtend extends, for a client, the watches on tags. A tag must have
// been granted to user by the backend (AddWatch, even if it lapsed
// recently) or be listed in the client's token (tokenTags); otherwise
// nothing is extended and the error wraps ErrForbidden naming the tag.
func (s *Service) ClientExtend(user string, tokenTags, tags []string) error {
	if err := checkIDs("tags", tags); err != nil {
		return err
	}
	allowed := make(map[string]bool, len(tokenTags))
	for _, t := range tokenTags {
		allowed[t] = true
	}
	var fresh []string
	for _, t := range tags {
		switch {
		case s.watch.Known(user, t):
		case allowed[t]:
			fresh = append(fresh, t)
		default:
			return fmt.Errorf("%w: tag %q was not granted to this user", ErrForbidden, t)
		}
	}
	now := s.o.Now()
	if _, err := s.watch.Extend([]string{user}, tags, now); err != nil {
		return err
	}
	if len(fresh) > 0 {
		return s.watch.Add([]string{user}, fresh, s.o.WatchTTL, now)
	}
	return nil
}

// Admit registers a live connection of user from client, unless the user
// has MaxConnsPerUser already (then the caller closes it with 4029).
func (s *Service) Admit(user, client string) bool {
	ok, changed := s.presence.admit(user, client, s.o.MaxConnsPerUser, s.o.Now())
	if changed && s.shared != nil {
		s.shared.SetLocal(user, true)
	}
	return ok
}

// Release ends a connection registered by Admit.
func (s *Service) Release(user, client string) {
	if s.presence.release(user, client, s.o.Now()) && s.shared != nil {
		s.shared.SetLocal(user, false)
	}
}

// Polled records a poll of user that keeps the user online until until
// (the next poll is due).
func (s *Service) Polled(user, client string, until time.Time) {
	if s.presence.polled(user, client, until, s.o.Now()) && s.shared != nil {
		s.shared.SetLocal(user, true)
	}
}

// online reports whether user has a connection or a due poller on this
// node or, in a cluster, on another one.
func (s *Service) online(user string, now time.Time) bool {
	return s.presence.online(user, now) || (s.shared != nil && s.shared.Remote(user))
}

// Online reports the presence of users. In a cluster the connection
// counts and clients are this node's; Online is true when any node has
// the user online.
func (s *Service) Online(users []string) map[string]UserPresence {
	now := s.o.Now()
	out := make(map[string]UserPresence, len(users))
	for _, u := range users {
		r := s.presence.report(u, now)
		if !r.Online && s.shared != nil && s.shared.Remote(u) {
			r.Online, r.LastSeen = true, now
		}
		out[u] = r
	}
	return out
}

// Totals counts users online, connections and pollers.
func (s *Service) Totals() Totals { return s.presence.totals(s.o.Now()) }
