package jsqueue

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pushpull/pushpull/queue"
)

// Records are JSON with a version field: the queue package's binary codec
// is unexported, and JSON keeps the records readable with the nats CLI
// (`nats stream get`, `nats kv get`) when a cluster is debugged. The
// version lets the layout change without a flag day across nodes.
const recordVersion = 1

// errCorrupt means a message or KV record could not be decoded.
var errCorrupt = errors.New("jsqueue: corrupt record")

type jobRecord struct {
	V   int        `json:"v"`
	Job *queue.Job `json:"job"`
}

func encodeJob(j *queue.Job) ([]byte, error) {
	return json.Marshal(jobRecord{V: recordVersion, Job: j})
}

func decodeJob(b []byte) (*queue.Job, error) {
	var r jobRecord
	if err := json.Unmarshal(b, &r); err != nil || r.V != recordVersion || r.Job == nil {
		return nil, fmt.Errorf("%w: job (version %d): %v", errCorrupt, r.V, err)
	}
	return r.Job, nil
}

// statusRecord is the KV value per job: what Status reports, and the retry
// state (Attempts, LastError, NextAttempt) a redelivered message resumes.
type statusRecord struct {
	V              int       `json:"v"`
	NotificationID string    `json:"nid"`
	JobID          string    `json:"id"`
	DeviceID       string    `json:"dev,omitempty"`
	User           string    `json:"user,omitempty"`
	Platform       string    `json:"plat,omitempty"`
	AppID          string    `json:"app,omitempty"`
	State          string    `json:"state"`
	LastError      string    `json:"err,omitempty"`
	Attempts       int       `json:"attempts,omitempty"`
	NextAttempt    time.Time `json:"next"`
	UpdatedAt      time.Time `json:"at"`
}

func newStatus(j *queue.Job, state, lastError string, now time.Time) statusRecord {
	return statusRecord{
		V: recordVersion, NotificationID: j.NotificationID, JobID: j.ID,
		DeviceID: j.DeviceID, User: j.User, Platform: j.Platform, AppID: j.AppID,
		State: state, LastError: lastError, Attempts: j.Attempts,
		NextAttempt: j.NextAttempt, UpdatedAt: now,
	}
}

func (s statusRecord) public() queue.JobStatus {
	return queue.JobStatus{
		JobID: s.JobID, DeviceID: s.DeviceID, User: s.User, Platform: s.Platform,
		AppID: s.AppID, State: s.State, LastError: s.LastError, Attempts: s.Attempts,
		NextAttempt: s.NextAttempt, UpdatedAt: s.UpdatedAt,
	}
}

func decodeStatus(b []byte) (statusRecord, error) {
	var s statusRecord
	if err := json.Unmarshal(b, &s); err != nil || s.V != recordVersion {
		return s, fmt.Errorf("%w: status (version %d): %v", errCorrupt, s.V, err)
	}
	return s, nil
}

type deadRecord struct {
	V      int        `json:"v"`
	Job    *queue.Job `json:"job"`
	Reason string     `json:"reason"`
	DiedAt time.Time  `json:"died_at"`
}

func decodeDead(b []byte) (queue.DeadJob, error) {
	var r deadRecord
	if err := json.Unmarshal(b, &r); err != nil || r.V != recordVersion || r.Job == nil {
		return queue.DeadJob{}, fmt.Errorf("%w: dead letter (version %d): %v", errCorrupt, r.V, err)
	}
	return queue.DeadJob{Job: *r.Job, Reason: r.Reason, DiedAt: r.DiedAt}, nil
}

// idemRecord is the value of an idempotency key: "pending" while the
// claiming Submit publishes its jobs, then "done" with the caller's result.
type idemRecord struct {
	V      int       `json:"v"`
	Done   bool      `json:"done"`
	At     time.Time `json:"at"`
	Result []byte    `json:"result,omitempty"`
}

// token turns any string into one subject token or KV key part: NATS
// tokens may not hold '.', '*', '>' or spaces, and ids come from API
// callers. The '_' prefix keeps the empty string a valid token.
func token(s string) string {
	return "_" + base64.RawURLEncoding.EncodeToString([]byte(s))
}
