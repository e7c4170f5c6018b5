// Package fake provides protocol-true stand-ins for the push services that
// pushpull talks to: an APNs provider API (HTTP/2 over TLS, ES256 provider
// tokens, Apple's status codes and JSON reasons) and an FCM v1 API (OAuth
// token endpoint and messages:send with Google error bodies).
//
// The fakes are meant for tests, benchmarks and the demo, so they do not
// depend on package testing. Each listens on a random loopback port, can be
// scripted per device token (fail with a status and reason, fail N times then
// succeed, answer slowly, send Retry-After, be down), can fail service-wide
// (Faults: 503 for everything, every n-th request 500, streams reset
// mid-answer) and rotate its TLS certificate under the same CA
// (APNs.RotateCertificate), records what it
// received for assertions (or only counts, for benchmarks) and lets a caller
// wait for N deliveries without sleeping.
//
// Every fake owns its server goroutines; Close stops them and waits for them,
// and is idempotent. A fake is safe for concurrent use.
package fake
