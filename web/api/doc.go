// Package api is the publisher API (/api/v1) that PHP backends and ops
// tools call on the publisher listener. Every route requires an API key;
// every error uses the apierr shape; batch requests are validated whole
// before anything is applied. Handlers translate HTTP to gateway, queue
// and devices calls and hold no business rule themselves.
package api
