// Package relay reads the push batches that a Bitrix portal's CPushManager
// posts to its push relay (the pull module option push_service_url), so
// that pushpull can deliver them itself. It knows no HTTP server and no
// queue: it turns bytes into frames, and the caller (the relay endpoint)
// turns frames into jobs.
//
// It owns three things:
//
//   - ReadForm: the request body "Action=SendMessage&MessageBody=…", read
//     with the caller's size cap (Go's ParseForm stops at 10 MB).
//   - Parser.Parse: the MessageBody string in any of the three layouts the
//     module has used (24.500 per-app modifiers; 23.100 and older with one
//     header per service and the multi-app misattribution; 20.5 without
//     h=), each frame decoded by its mode: Apple legacy binary (1, 2, and
//     VoIP 4, 5), Google legacy (3, converted to the FCM v1 data shape),
//     FCM v1 (7, nulls fixed) and Huawei (6).
//   - The reply the portal's site checker expects (XML) and the key check.
//
// Guarantees: Parse never panics and never fails as a whole; every segment
// is either a frame, a header, an empty segment, or a skip counted under a
// Reason. Frames with byte-identical content in one batch share one
// *providers.Notification, so providers can group them. Everything is safe
// for concurrent use; nothing here starts a goroutine.
package relay
