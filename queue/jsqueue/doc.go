// Package jsqueue is the push queue of pushpull on NATS JetStream: the
// cluster engine behind the same contract as the bbolt queue (package
// queue), so that several pushpull nodes share one queue.
//
// It owns, under the names given in Options: a work-queue stream of jobs
// (one message per job), one durable pull consumer on it (the dispatch
// lease), a limits stream of dead letters, a KV bucket of per-job status
// records (which also carries a job's mutable retry state) and a KV bucket
// of idempotency keys. It never closes the JetStream connection.
//
// Guarantees:
//
//   - Durability: Submit returns nil only after JetStream acknowledged
//     every job message (PubAck, stored on the stream's replicas), and the
//     status record of each job. Ack and the dead-letter calls wait for
//     the server to confirm.
//   - At-least-once delivery and exclusivity: the consumer hands each
//     message to one Lease caller across all nodes until it is acked or
//     its AckWait (Options.LeaseTimeout) passes; a node that stops or
//     crashes has its leases redelivered to the others.
//   - Retries and deferral use NakWithDelay: the message stays in the
//     stream and the server holds it back for the delay. Attempts,
//     LastError and NextAttempt live in the status record, read back on
//     redelivery (a message's own bytes are immutable).
//
// What is not exact in a cluster is written on each method (Stats,
// NextDue, Cancel). Every method of Queue is safe for concurrent use.
package jsqueue
