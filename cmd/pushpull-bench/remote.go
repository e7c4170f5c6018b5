package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// errNeedsOwnServer is returned by scenarios that must configure (or kill)
// the server themselves when -target points at a running instance.
var errNeedsOwnServer = errors.New("this scenario configures and controls its own server (fake providers, kill/restart); it cannot run with -target")

// remoteFlags registers the flags that point a scenario at a running
// pushpull instead of starting one. The returned function builds the
// server handle after parsing (nil when -target is not given).
func remoteFlags(fs *flag.FlagSet) func() (*server, error) {
	target := fs.String("target", "", "publisher `URL` of a running pushpull (e.g. http://127.0.0.1:8895); default: start one")
	client := fs.String("target-client", "", "client listener `URL` of the running pushpull (default: the -target host, port 8893)")
	keyFile := fs.String("target-key-file", "", "`file` holding an API key of the running pushpull (its data/api_key)")
	secretFile := fs.String("target-jwt-secret-file", "", "`file` holding its client JWT secret (its data/jwt_secret), to mint client tokens")
	pid := fs.Int("target-pid", 0, "`pid` of the running pushpull, for RSS and CPU figures (same machine only; 0: not reported)")
	return func() (*server, error) {
		if *target == "" {
			return nil, nil
		}
		api, err := url.Parse(strings.TrimSuffix(*target, "/"))
		if err != nil || (api.Scheme != "http" && api.Scheme != "https") || api.Host == "" {
			return nil, fmt.Errorf("-target: want http(s)://host:port, got %q", *target)
		}
		cl := *client
		if cl == "" {
			cl = api.Scheme + "://" + api.Hostname() + ":8893"
		}
		wsURL := strings.Replace(strings.Replace(strings.TrimSuffix(cl, "/"), "https://", "wss://", 1), "http://", "ws://", 1) + "/sub/ws"
		read := func(flagName, f string) (string, error) {
			if f == "" {
				return "", fmt.Errorf("-target needs %s", flagName)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return "", fmt.Errorf("%s: %w", flagName, err)
			}
			return strings.TrimSpace(string(b)), nil
		}
		key, err := read("-target-key-file", *keyFile)
		if err != nil {
			return nil, err
		}
		secret, err := read("-target-jwt-secret-file", *secretFile)
		if err != nil {
			return nil, err
		}
		return &server{
			apiURL: api.String(), wsURL: wsURL, key: key, secret: []byte(secret), pid: *pid, remote: true,
			http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second,
			}},
		}, nil
	}
}
