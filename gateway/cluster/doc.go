// Package cluster connects the live half of several pushpull nodes through
// NATS JetStream.
//
// Bus implements live.Bus on one JetStream stream (default
// PUSHPULL_EVENTS): a published event is appended to the stream, and every
// node, the publishing one included, applies the stream in order to its own
// hub with hub.PublishSeq. The stream sequence is the mid counter and the
// stream's creation second is the mid epoch, so a mid names the same event
// on every node and a client that reconnects to another node resumes
// there with no gap and no duplicate (hub.Options.CatchUp covers a node
// that is a few entries behind).
//
// Guarantees:
//   - Publish returns after JetStream stored the event (replicated per the
//     stream's replica count); the mid it returns is the event's on every
//     node.
//   - Every node applies every event once, in stream order, so the
//     per-connection mid order of a single hub holds across the cluster.
//   - A node that starts (or restarts) replays the events the stream still
//     retains (MaxAge, MaxBytes) before Open returns, so it can serve a
//     resume at once; clients resuming from before what it retains
//     resynchronise (the hub's floor).
//
// The cost, measured in BENCHMARKS.md: one stream round trip per publish,
// every node decodes every event (fan-out work per node is bounded by its
// own connections), and the stream's single order is the throughput bound
// of live events across the cluster.
//
// Watches and presence are shared through KV buckets (package kvstate);
// push jobs and devices through queue/jsqueue and devices/kvregistry.
package cluster
