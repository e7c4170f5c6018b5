package push

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
)

// Result is what Push did with one Request.
type Result struct {
	// ID is the notification id ("n_" + 26 sortable characters), for
	// Status.
	ID string `json:"id"`
	// Jobs is how many device jobs were queued.
	Jobs int `json:"jobs"`
	// SkippedOnline are users left out because they were online and the
	// policy was skip.
	SkippedOnline []string `json:"skipped_online"`
	// NoDevice are users with no device that could receive this push.
	NoDevice []string `json:"no_device"`
}

// BatchError is a Push call rejected because one of its requests is
// invalid; nothing was stored.
type BatchError struct {
	Index int
	Err   *FieldError
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("push: notification %d: %v", e.Index, e.Err)
}

// Unwrap returns the *FieldError.
func (e *BatchError) Unwrap() error { return e.Err }

// Push validates every request (a *BatchError names the first bad one and
// nothing is stored), resolves users to devices in one registry read,
// applies the online policy and queues one job per device. All jobs of the
// call are handed to the queue at once, so its group commit makes them
// durable together with one fsync: when Push returns nil, every job it
// counts is stored. A request whose IdempotencyKey was seen within the
// queue's window stores nothing and gets the first call's Result.
//
// On an error other than *BatchError, some requests may have been stored
// and others not; a caller that retries should use idempotency keys.
func (s *Service) Push(ctx context.Context, reqs []Request) ([]Result, error) {
	for i := range reqs {
		if fe := s.validate(&reqs[i]); fe != nil {
			return nil, &BatchError{Index: i, Err: fe}
		}
	}
	byUser, err := s.lookup(ctx, reqs)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	online := make(map[string]bool)
	isOnline := func(u string) bool {
		v, ok := online[u]
		if !ok {
			v = s.opts.IsOnline(u)
			online[u] = v
		}
		return v
	}
	results := make([]Result, len(reqs))
	var plain queue.Submission
	var keyed []queue.Submission
	var keyedIdx []int
	for i := range reqs {
		jobs, res, err := s.fanOut(&reqs[i], byUser, isOnline, now)
		if err != nil {
			return nil, err
		}
		results[i] = res
		if reqs[i].IdempotencyKey == "" {
			plain.Jobs = append(plain.Jobs, jobs...)
			continue
		}
		raw, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("push: encoding result: %w", err)
		}
		keyed = append(keyed, queue.Submission{IdempotencyKey: reqs[i].IdempotencyKey, Result: raw, Jobs: jobs})
		keyedIdx = append(keyedIdx, i)
	}
	if err := s.submit(ctx, plain, keyed, keyedIdx, results); err != nil {
		return nil, err
	}
	return results, nil
}

// lookup reads the devices of every user of the call in one transaction.
func (s *Service) lookup(ctx context.Context, reqs []Request) (map[string][]devices.Device, error) {
	var users []string
	seen := make(map[string]struct{})
	for i := range reqs {
		for _, u := range reqs[i].Users {
			if _, ok := seen[u]; !ok {
				seen[u] = struct{}{}
				users = append(users, u)
			}
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	m, err := s.reg.ListByUsers(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("push: resolving devices: %w", err)
	}
	return m, nil
}

// submit stores the unkeyed jobs in one Submission and each keyed request
// in its own (the queue keeps one idempotency key per Submission). They are
// submitted concurrently so the queue's group commit still writes them in
// one transaction in the usual case.
func (s *Service) submit(ctx context.Context, plain queue.Submission, keyed []queue.Submission, keyedIdx []int, results []Result) error {
	if len(keyed) == 0 {
		if _, _, err := s.q.Submit(ctx, plain); err != nil {
			return fmt.Errorf("push: queueing: %w", err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(keyed)+1)
	for k := range keyed {
		wg.Go(func() {
			stored, dup, err := s.q.Submit(ctx, keyed[k])
			if err != nil {
				errs[k] = err
				return
			}
			if dup {
				var r Result
				if err := json.Unmarshal(stored, &r); err != nil {
					errs[k] = fmt.Errorf("stored result of idempotency key: %w", err)
					return
				}
				results[keyedIdx[k]] = r
			}
		})
	}
	if len(plain.Jobs) > 0 {
		_, _, errs[len(keyed)] = s.q.Submit(ctx, plain)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("push: queueing: %w", err)
		}
	}
	return nil
}

// fanOut builds the jobs of one request. Jobs sharing a payload are kept
// next to each other: the queue stores a run of equal payloads once.
func (s *Service) fanOut(r *Request, byUser map[string][]devices.Device, isOnline func(string) bool, now time.Time) ([]*queue.Job, Result, error) {
	res := Result{ID: newNotificationID(now), SkippedOnline: []string{}, NoDevice: []string{}}
	start := now
	if r.SendAt.After(now) {
		start = r.SendAt
	}
	expiry := r.Expiry
	if expiry == 0 {
		expiry = s.opts.DefaultExpiry
	}
	n := r.Notification
	n.ExpiresAt = start.Add(expiry).UTC()
	if n.CollapseID == "" && len(r.SubTag) <= MaxCollapseIDLen {
		n.CollapseID = r.SubTag
	}
	payload, err := json.Marshal(&n)
	if err != nil {
		return nil, res, fmt.Errorf("push: encoding notification: %w", err)
	}
	var silentPayload []byte
	voip := n.PushType == providers.PushVoIP
	policy := r.WhenOnline
	if policy == "" {
		policy = WhenOnlineSend
	}
	if voip && policy == WhenOnlineSilent {
		// A VoIP push must report a call or iOS ends the app: there is no
		// silent VoIP push, so online users are skipped instead.
		policy = WhenOnlineSkip
	}
	base := queue.Job{
		NotificationID: res.ID, Tag: r.Tag, SubTag: r.SubTag,
		NotBefore: r.SendAt, ExpiresAt: n.ExpiresAt,
	}
	var jobs, silentJobs []*queue.Job
	skip := make(map[string]struct{}, len(r.SkipUsers))
	for _, u := range r.SkipUsers {
		skip[u] = struct{}{}
	}
	done := make(map[string]struct{}, len(r.Users))
	for _, u := range r.Users {
		if _, ok := skip[u]; ok {
			continue
		}
		if _, ok := done[u]; ok {
			continue
		}
		done[u] = struct{}{}
		silent := false
		if policy != WhenOnlineSend && isOnline(u) {
			if policy == WhenOnlineSkip {
				res.SkippedOnline = append(res.SkippedOnline, u)
				continue
			}
			silent = true
			if silentPayload == nil {
				if silentPayload, err = json.Marshal(silentOf(&n)); err != nil {
					return nil, res, fmt.Errorf("push: encoding notification: %w", err)
				}
			}
		}
		made := 0
		for _, d := range byUser[u] {
			if r.AppID != "" && d.AppID != r.AppID {
				continue
			}
			token := d.Token
			if voip {
				if d.Platform != providers.PlatformAPNs || d.VoIPToken == "" {
					continue
				}
				token = d.VoIPToken
			}
			j := base
			j.User, j.DeviceID, j.Platform, j.AppID, j.Token, j.Sandbox = u, d.ID, d.Platform, d.AppID, token, d.Sandbox
			if silent {
				j.Payload = silentPayload
				silentJobs = append(silentJobs, &j)
			} else {
				j.Payload = payload
				jobs = append(jobs, &j)
			}
			made++
		}
		if made == 0 {
			res.NoDevice = append(res.NoDevice, u)
		}
	}
	for _, d := range r.Devices {
		nd := devices.Normalize(devices.Device{Platform: d.Platform, Token: d.Token})
		j := base
		j.Platform, j.AppID, j.Token, j.Sandbox, j.Payload, j.Origin = d.Platform, d.AppID, nd.Token, d.Sandbox, payload, d.Origin
		jobs = append(jobs, &j)
	}
	jobs = append(jobs, silentJobs...)
	res.Jobs = len(jobs)
	return jobs, res, nil
}

// silentOf is the content-available-only variant of n for online users
// under the silent policy: no alert, no sound, normal priority (APNs
// requires priority 5 for background pushes), custom data and badge kept.
func silentOf(n *providers.Notification) *providers.Notification {
	return &providers.Notification{
		Badge: n.Badge, ThreadID: n.ThreadID, Data: n.Data, ContentAvailable: true,
		PushType: providers.PushBackground, Priority: providers.PriorityNormal,
		CollapseID: n.CollapseID, ExpiresAt: n.ExpiresAt,
	}
}

// crockford is the ULID alphabet: sortable, no I, L, O, U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newNotificationID returns "n_" and a ULID-like 26-character id: 48 bits
// of milliseconds then 80 random bits, so ids sort by creation time and
// never collide in practice.
func newNotificationID(now time.Time) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(max(now.UnixMilli(), 0))<<16)
	_, _ = rand.Read(raw[6:]) // crypto/rand.Read never fails (Go >= 1.24)
	hi := binary.BigEndian.Uint64(raw[:8])
	lo := binary.BigEndian.Uint64(raw[8:])
	var out [2 + 26]byte
	out[0], out[1] = 'n', '_'
	// 128 bits in 26 base-32 digits: the first digit carries 3 bits.
	for i := 27; i >= 2; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
