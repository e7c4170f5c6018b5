// Package client is the client listener's surface for browsers and mobile
// apps: WebSocket, long and short polling, Server-Sent Events, watch
// extension and device registration. Every route authenticates the caller
// with a client token (gateway/token); the user always comes from the
// token, never from the request.
package client
