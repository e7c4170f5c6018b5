// Package queue is the durable retry queue of pushpull, stored in bbolt.
//
// One Job is one notification to one device. The queue owns every bucket
// whose name starts with "queue." in the *bbolt.DB it is given; it never
// closes that DB.
//
// Guarantees:
//
//   - Durability: Enqueue, Submit, Ack, Retry, Dead, Drop, Cancel and the
//     dead-letter admin calls return nil only after their writes are
//     committed and fsynced. All writes that are waiting at the same time
//     share one bbolt transaction (group commit), so one fsync serves many
//     callers.
//   - At-least-once delivery: a leased job stays stored until it is acked,
//     retried, dead-lettered or dropped. Leases live in memory only: a job
//     leased but not settled within LeaseTimeout, or when the process
//     stops, is due again.
//   - Exclusivity: Lease never hands the same job to two callers while its
//     lease is valid.
//   - Bounded size: dead letters, per-notification status records and
//     idempotency keys are pruned by age (and dead letters by count), so
//     the file does not grow without bound. Compact rewrites a file
//     offline to give the freed pages back to the file system.
//
// Every method of Queue is safe for concurrent use.
package queue
