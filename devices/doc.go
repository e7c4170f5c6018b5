// Package devices is the device-token registry: which mobile app
// installations (APNs, FCM) each user has, stored in bbolt.
//
// It owns the buckets named "devices.*" in a bbolt file it shares with other
// packages, and guarantees:
//
//   - a token belongs to one device, and so one user, at a time:
//     registering it elsewhere takes it away from its previous holder in the
//     same transaction, so one user's pushes never reach another user;
//   - each write is one bbolt transaction, durable when the call returns;
//   - fan-out lookups (ListByUsers) read one consistent snapshot with one
//     index seek per user;
//   - devices that stop re-registering are purged after Options.StaleAfter.
//
// It validates what apps send (Validate) but knows nothing of HTTP, of
// providers or of the gateway; it imports only bbolt and the standard
// library.
package devices
