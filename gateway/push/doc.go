// Package push turns API notifications into durable queue jobs and
// dispatches those jobs to the mobile push providers.
//
// It owns three things:
//
//   - The fan-out (Service.Push): one API notification becomes one queue
//     job per device of its recipients (resolved through the device
//     registry in one read transaction), after the online policy
//     (when_online) has been applied. Every job of one Push call is handed
//     to the queue at the same time, so the group commit writes them with
//     one fsync: when Push returns nil, every job it reports is durable.
//   - The dispatcher (Service.Start/Stop): workers lease due jobs, send
//     them through the provider of their platform with a bounded number in
//     flight per provider, and act on each classified answer: delivered ->
//     ack; retry -> back off (the provider's Retry-After is honoured);
//     token invalid -> the device is removed from the registry, the job is
//     dropped and the feedback webhook is told; rejected -> dead letter,
//     token kept. A provider that answers "retry" for most of a batch is
//     paused (circuit breaker with growing backoff) so that an outage does
//     not become a retry storm; other providers keep flowing.
//   - The feedback webhook: removed tokens are POSTed, HMAC-SHA256 signed,
//     to an optional URL, asynchronously and with a few retries.
//
// Delivery is at least once: a job is removed from the queue only after
// its provider accepted it, so a crash between the provider's answer and
// the ack sends it again.
package push
