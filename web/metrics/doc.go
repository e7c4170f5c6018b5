// Package metrics exports pushpull's Prometheus metrics on the publisher
// listener (/metrics) and owns the database write probe behind /readyz.
//
// Gauges and counters that mirror a component's state (queue depth, hub
// connections and event counters, history, provider answers and latency,
// database size and commits) are read from that component at scrape time:
// components keep plain counters and import nothing from Prometheus, and a
// scrape costs one Stats call per component. Request metrics come from Echo
// middleware. Every metric is listed, with its labels, in the README
// section "Operations: metrics and health"; the Grafana dashboard in
// deploy/grafana queries only metrics registered here (checked by a test).
//
// Label values are bounded: routes are Echo patterns (never paths),
// provider reasons are short identifiers or "status_<code>" or "other"
// (gateway/push bounds them), apps are the configured ones.
package metrics
