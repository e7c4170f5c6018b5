// Command pushpull-bench is the end-to-end load generator of pushpull.
//
// It starts a real pushpull process (built from this tree, or --bin) on
// random loopback ports with a temporary data directory, drives it over
// real sockets and reports one human line and one JSON line per run:
//
//	pushpull-bench fanout          -clients 1000 -events 200
//	pushpull-bench publish-latency -rate 1000 -duration 10s
//	pushpull-bench idle-memory     -clients 10000
//	pushpull-bench ingest          -requests 2000 -batch 100 -concurrency 32
//
// The server is always stopped on return, on error and on SIGINT/SIGTERM.
// Every loop is bounded by a count and by -timeout. Traffic stays on
// loopback; WebSocket clients are spread over several 127.x.y.z source
// addresses (50 per address) so the per-address connect limit of /sub/ws
// (20/s, bursts of 60) paces them without a minute-long ramp, and a 429 is
// retried after its Retry-After.
package main
