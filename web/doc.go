// Package web runs pushpull's two HTTP listeners on Echo: the publisher
// listener (loopback by default, API-key protected, for PHP backends and
// ops) and the client listener (browsers and apps, client tokens). It owns
// what both share — the error shape, request ids, access logs, body limits,
// /healthz and /readyz — and the subpackages (api, client) add the routes.
package web
