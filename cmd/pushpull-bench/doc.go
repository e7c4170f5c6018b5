// Command pushpull-bench is the end-to-end load generator of pushpull.
//
// It starts a real pushpull process (built from this tree, or -bin) on
// random loopback ports with a temporary data directory, drives it over
// real sockets and reports one human line and one JSON line per run:
//
//	pushpull-bench fanout          -clients 1000 -events 200 [-cluster 3 [-publish-all]]
//	pushpull-bench publish-latency -rate 1000 -duration 10s
//	pushpull-bench idle-memory     -clients 10000 [-polls 10000]
//	pushpull-bench ingest          -requests 2000 -batch 100 -concurrency 32
//	pushpull-bench deliver-apns    -devices 1000 -jobs 50000 [-verify] [-cluster 3]
//	pushpull-bench deliver-fcm     -devices 1000 -jobs 50000 [-verify]
//	pushpull-bench recovery        -devices 1000 -jobs 100000
//
// The delivery scenarios run the fakes of providers/fake inside this
// process and point the server at them with a generated configuration file
// (PUSHPULL_CONFIG) and, for the fake APNs's certificate, SSL_CERT_FILE.
// recovery kills the server with SIGKILL and restarts it on the same data
// directory and ports.
//
// fanout, deliver-apns and deliver-fcm take -cluster N: the bench then runs
// an embedded nats-server with JetStream (loopback, random port, store in
// the run's temp directory) and N pushpull processes in cluster mode on it
// (node ids n1…nN, one data directory and port pair each, one shared API
// key and JWT secret, the same fakes). fanout spreads its clients round
// robin over the nodes and publishes through the first (or, with
// -publish-all, round robin); deliver-* registers and enqueues through the
// first and every node dispatches from the shared queue. Server RSS and CPU
// are summed over the nodes (per node in the extras); the bench process's
// CPU then includes the nats-server's. -cluster cannot be combined with
// -target. The nodes are stopped, then the nats-server.
//
// Every scenario accepts -env PUSHPULL_KEY=value (extra server
// configuration), -timeout and -perf file (a perf CPU profile of the server
// during the measured phase). The server is always stopped on return, on
// error and on SIGINT/SIGTERM, and the fakes closed. Every loop is bounded
// by a count and by -timeout. Traffic stays on loopback; WebSocket clients
// and long polls are spread over several 127.x.y.z source addresses (50 per
// address) so the per-address connect limit of the live routes (20/s,
// bursts of 60) paces them without a minute-long ramp, and a 429 is retried
// after its Retry-After.
package main
