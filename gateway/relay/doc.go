// Package relay reads the push batches that a Bitrix portal's CPushManager
// posts to its push relay (the pull module option push_service_url), so
// that pushpull can deliver them itself. It serves no HTTP (web/relay does)
// and holds no state of its own: frames become jobs of the push service.
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
//   - Service.Accept: a batch's frames become push jobs (push.Service),
//     grouped by content, mapped to the configured app by tkey, expired
//     frames and frames the push service refuses skipped one by one, all
//     stored in one commit before Accept returns.
//   - Remover: dead tokens of relay jobs (queue.Job.Origin carries the
//     portal host) are told to the portal's token-remove action.
//
// Guarantees: Parse never panics and never fails as a whole; every segment
// is either a frame, a header, an empty segment, or a skip counted under a
// Reason. Frames with byte-identical content in one batch share one
// *providers.Notification, so providers can group them. Everything is safe
// for concurrent use; only the Remover starts a goroutine (stopped by its
// Close).
package relay
