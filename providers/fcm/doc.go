// Package fcm delivers pushes through Firebase Cloud Messaging (HTTP v1)
// with the official firebase.google.com/go/v4 messaging client.
//
// It owns one messaging client per configured app, built once in New and
// reused by every send; the mapping from providers.Notification to the FCM
// v1 message (notification, data, android and apns blocks, then the raw
// FCM overrides merged last); and the classification of FCM's answers into
// providers.Class, following the FCM table in PROVIDERS.md.
//
// Guarantees: Send returns exactly one Result per message, in input order,
// and never returns before every send it started has finished. Each send
// is bounded by Options.Timeout. A cancelled context yields Retry results
// for the messages not sent. Delivery is at-least-once: the SDK itself
// retries network errors and 503 within the send timeout, and a retried
// POST may reach the device twice.
//
// Payload limits are exposed (MaxDataBytes, PayloadSize, CheckPayload) so
// that the API can answer 413 before a job is enqueued.
package fcm
