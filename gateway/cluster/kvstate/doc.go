// Package kvstate shares two pieces of live state between the pushpull
// nodes of a cluster through NATS JetStream key-value buckets: tag watches
// (Watches, a live.WatchStore) and which users each node has online
// (Presence, a live.SharedPresence).
//
// # Buckets and keys
//
// KV keys allow only [-/_=.A-Za-z0-9], so tags and users are base64url
// without padding ("=" stands for the empty string); node ids are limited
// to [-_A-Za-z0-9].
//
//	pushpull_watch     <tag>.<user>           -> "<expires unix ms>:<ttl ms>"
//	pushpull_presence  n.<node>               -> "<heartbeat unix ms>"
//	                   u.<node>.<user>        -> "1" while the node has user online
//
// The watch bucket keeps one revision per key and drops keys not written
// for 2×MaxTTL (MaxAge), so watches nobody sweeps vanish by themselves. The
// presence bucket has no MaxAge (a user may stay online for days); deleted
// keys leave markers that expire after an hour (per-message TTL). A node
// cut off for longer misses those deletes, so every ReconcileEvery (10m)
// it checks its replica against the bucket's keys and drops the users
// whose keys are gone.
//
// # Replicas
//
// Each Watches and Presence keeps an in-memory replica of its bucket, fed
// by a KV watcher that one goroutine drains; Open returns after the
// initial values are loaded. Every read (Watchers, TagsOf, Known, Remote,
// Nodes) is a map lookup on that replica, never a network round trip, so
// the publish path does not wait on NATS.
//
// # Guarantees
//
// Eventual between nodes: a write on one node is visible on another once
// the watcher delivers it (typically milliseconds). A node reads its own
// writes at once: they are applied to its replica when the write returns,
// and entries carry their bucket revision so the watcher's late echo of an
// older write never undoes a newer one. Extend renews by compare-and-swap,
// so it never revives a watch another node removed; Sweep deletes only
// keys unchanged since it read them.
//
// Presence: SetLocal never blocks on the network; transitions are queued
// (last state per user wins, one map entry per user) and written by one
// goroutine. Each node writes a heartbeat every Heartbeat; another node's
// users count only while its heartbeat is younger than DeadAfter, so a
// killed node's users go offline by themselves, and live nodes delete the
// keys of a node dead for PurgeAfter. Close deletes the node's keys so its
// users go offline at once. A node that finds its keys deleted while it
// is alive (it was partitioned) writes them again.
//
// # Failures
//
// NATS down: watch writes (Add, Extend, Remove) fail with the client's
// error wrapped; presence transitions stay queued and are retried every
// Heartbeat; reads keep serving the last known replica. Close stays
// bounded: its writes use Timeout, and stopping the watcher waits at most
// for the client's JetStream API timeout. Undecodable entries are
// skipped, counted (Skipped) and logged.
//
// All nodes must share Heartbeat and DeadAfter (each node judges the
// others by its own DeadAfter), and their clocks must agree to well within
// DeadAfter - Heartbeat.
package kvstate
