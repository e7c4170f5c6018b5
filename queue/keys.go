package queue

import (
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"
)

// Bucket layout. Index keys start with a big-endian unix-nano time so that
// a cursor walks them in time order; strings inside composite keys are
// length-prefixed (uvarint) so that no prefix of one key can be mistaken
// for another (a tag "a" never matches a tag "ab").
var (
	bucketJobs       = []byte("queue.jobs")        // id -> job record
	bucketDue        = []byte("queue.due")         // nextAttempt|id -> nil, every stored job
	bucketTag        = []byte("queue.tag")         // lp(tag)|lp(user)|id -> nil
	bucketSubTag     = []byte("queue.subtag")      // lp(subtag)|lp(user)|id -> nil
	bucketStatus     = []byte("queue.status")      // lp(notification)|id -> status record
	bucketStatusTime = []byte("queue.status.time") // updatedAt|id -> status key, terminal records only
	bucketDead       = []byte("queue.dead")        // id -> dead record
	bucketDeadTime   = []byte("queue.dead.time")   // diedAt|id -> nil
	bucketIdem       = []byte("queue.idem")        // key -> storedAt(8)|result
	bucketIdemTime   = []byte("queue.idem.time")   // storedAt|key -> nil
	bucketPayloads   = []byte("queue.payloads")    // ref -> refcount(8)|payload, shared by a fan-out
)

var allBuckets = [][]byte{
	bucketJobs, bucketDue, bucketTag, bucketSubTag, bucketStatus, bucketStatusTime,
	bucketDead, bucketDeadTime, bucketIdem, bucketIdemTime, bucketPayloads,
}

// buckets holds the queue's buckets within one transaction.
type buckets struct {
	jobs, due, tag, subTag, status, statusTime, dead, deadTime, idem, idemTime, payloads *bbolt.Bucket
}

func openBuckets(tx *bbolt.Tx) *buckets {
	b := &buckets{
		jobs: tx.Bucket(bucketJobs), due: tx.Bucket(bucketDue),
		tag: tx.Bucket(bucketTag), subTag: tx.Bucket(bucketSubTag),
		status: tx.Bucket(bucketStatus), statusTime: tx.Bucket(bucketStatusTime),
		dead: tx.Bucket(bucketDead), deadTime: tx.Bucket(bucketDeadTime),
		idem: tx.Bucket(bucketIdem), idemTime: tx.Bucket(bucketIdemTime),
		payloads: tx.Bucket(bucketPayloads),
	}
	if tx.Writable() {
		// Keys of these buckets arrive mostly in increasing order: full
		// pages mean fewer pages to write per commit.
		for _, bk := range []*bbolt.Bucket{b.jobs, b.due, b.statusTime, b.deadTime, b.idemTime} {
			bk.FillPercent = 0.9
		}
	}
	return b
}

// timeKey is t (unix nanos, negative clamped to 0) followed by suffix.
func timeKey(t time.Time, suffix string) []byte {
	n := nanos(t)
	if n < 0 {
		n = 0
	}
	k := make([]byte, 8, 8+len(suffix))
	binary.BigEndian.PutUint64(k, uint64(n))
	return append(k, suffix...)
}

// keyTime returns the time prefix of a timeKey as unix nanos.
func keyTime(k []byte) int64 {
	if len(k) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k))
}

func lpKey(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + binary.MaxVarintLen64
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = appendString(k, p)
	}
	return k
}

// indexKey is lp(a)|lp(user)|id, used by the tag and sub tag indexes.
func indexKey(a, user, id string) []byte {
	return append(lpKey(a, user), id...)
}

// indexKeyID extracts the id from an indexKey.
func indexKeyID(k []byte) (string, bool) {
	r := reader{b: k}
	r.bytes()
	r.bytes()
	if r.err != nil {
		return "", false
	}
	return string(r.b), true
}

func statusKey(notificationID, id string) []byte {
	return append(lpKey(notificationID), id...)
}
