// Package hms adapts Huawei Push Kit (HMS Core push, v1 send API) to
// providers.Provider, on plain net/http.
//
// It owns one OAuth 2.0 client-credentials access token per configured
// app, cached until shortly before it expires and fetched again when HMS
// answers that it is expired or unknown (80200001/80200003, then the send
// is repeated once). Sends go to POST {Endpoint}/v1/{AppID}/messages:send;
// messages of one Send call that share a *providers.Notification and an app
// are sent together, up to Options.MaxTokensPerRequest tokens a request,
// and HMS's answer is split back per token (80100000 lists the illegal
// ones).
//
// Every answer is classified for the dispatcher: accepted → Delivered;
// flow control (HTTP 503, 429), 5xx, 81000001 and network errors → Retry
// (Retry-After honoured); illegal tokens (80300007, the illegal_tokens of
// 80100000) → TokenInvalid; everything else (bad message, no permission,
// credentials refused) → Rejected with HMS's code as Reason.
//
// A Provider is safe for concurrent use; it starts no goroutine that
// outlives a Send call, and Close is idempotent.
package hms
