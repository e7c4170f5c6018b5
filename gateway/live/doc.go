// Package live is the "pull" half of the gateway: it publishes events to
// users, to the watchers of tags and to everyone through the hub, keeps the
// watch registry (CPullWatch) and presence (who is online, over which
// transports), and routes an event's push block to the users who are not
// online — or, with an ack timeout, to those who did not acknowledge the
// event in time.
//
// It knows no HTTP: web/api and web/client translate requests into calls
// on Service. Everything it holds is in memory: watches, presence and
// pending acks are lost on restart (clients re-extend watches and
// reconnect; a pending ack_timeout push is not sent after a restart).
package live
