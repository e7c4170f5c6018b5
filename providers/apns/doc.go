// Package apns delivers pushes to Apple Push Notification service through
// github.com/sideshow/apns2, and classifies every answer for the
// dispatcher (providers.Class).
//
// It owns the APNs credentials of each configured app (token auth with a
// .p8 key, or certificate auth with a .p12/.pem file, loaded once by New)
// and one reused HTTP/2 client per app and environment (production,
// sandbox). It renders the unified providers.Notification into an APNs
// payload and headers, with the raw "apns" overrides merged last.
//
// Guarantees: Send returns one Result per message, in input order, and
// never fails a batch for one message; each push is bounded by
// Options.Timeout; a 403 ExpiredProviderToken renews the provider JWT once
// per stale token, however many pushes saw it. A Provider is safe for
// concurrent use; Close is idempotent. PayloadSize and CheckNotification
// let the API refuse a notification before it is queued.
//
// Classification follows the table in docs (PROVIDERS.md): 410, 400
// BadDeviceToken and DeviceTokenNotForTopic mean the token is dead; 429,
// 5xx, IdleTimeout, ExpiredProviderToken, network errors and unreadable
// answers are retried (honouring Retry-After); anything else is a
// rejection of our request or configuration, and the token is kept.
package apns
