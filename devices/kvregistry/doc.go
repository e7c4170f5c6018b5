// Package kvregistry is the device-token registry of cluster mode, kept in
// NATS JetStream key-value buckets so that every pushpull node sees the same
// devices. It has the API, the validation and the results of package
// devices (the embedded bbolt registry) and satisfies push.Registry and
// api.DeviceStore.
//
// It owns three buckets (names in Options):
//
//	devices  base64url(id)                   -> record: the device, its claim
//	tokens   platform "." hex(sha256(token)) -> {device id, token, claim}
//	users    base64url(user)                 -> {user, [{device id, claim}]}
//
// KV keys allow only [-_=./A-Za-z0-9], so ids and users are base64url and
// tokens (up to 4 KiB) are hashed; the original text is in the value.
//
// # One owner per token
//
// There are no transactions across keys, so the token key is the arbiter:
// it is written with compare-and-swap (Create, or Update at the revision
// read) and names the one device that holds the token. A device record
// counts as holding a token only while that token's key names it; every
// read (Get, ListByUsers, FindByToken, RemoveToken) checks this, so a
// record left behind by a crash or a lost race never receives pushes.
//
// Register writes in this order, each step a single-key CAS:
//
//  1. the user's index entry for the device (with a fresh claim nonce);
//  2. the token keys (and the VoIP token key), now naming the device;
//  3. the device record (CAS on the revision read at the start; on
//     conflict the whole registration is retried with a new claim);
//  4. clean-up: previous holders of the tokens are deleted (main token
//     taken) or lose their VoIP token, the device's former tokens and its
//     former user's index entry are released, and the device checks that
//     its own tokens were not taken meanwhile (if they were, it is evicted
//     exactly as the later registration would have evicted it).
//
// A crash after step 1 leaves an index entry for a device that is missing
// or belongs to another user; after step 2, token keys naming a device whose
// record does not hold them; during step 4, records holding tokens whose
// keys name another device. Readers skip all three, later registrations
// overwrite them, and reads repair what they skip (index entries only after
// Options.RepairAfter, so an in-flight registration is never undone).
// Releases (step 4, Remove, RemoveToken) delete an index entry or a token
// key only while it still carries the claim nonce of the record being
// replaced, so they never undo a newer registration of the same device.
//
// Unlike the embedded registry, ListByUsers is not one snapshot: it reads
// each user's index, then each device, concurrently.
package kvregistry
