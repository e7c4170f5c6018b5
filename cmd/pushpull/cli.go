package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// apiClient talks to the publisher API of a running gateway, for the
// token and send subcommands.
type apiClient struct {
	base string
	key  string
	hc   *http.Client
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// clientFlags adds the flags that locate the API and returns a function
// building the client once flags are parsed. Defaults come from the
// configuration, so on one machine `pushpull token --user 42` just works.
func clientFlags(fs *flag.FlagSet) func() (*apiClient, error) {
	cfgPath := fs.String("config", os.Getenv("PUSHPULL_CONFIG"), "TOML configuration `file` (for the API address and key)")
	url := fs.String("url", "", "publisher API base `URL` (default: from the configuration)")
	key := fs.String("key", "", "API `key` (default: the first configured key, or <data_dir>/api_key; env PUSHPULL_KEY)")
	return func() (*apiClient, error) {
		cfg, err := loadConfig(*cfgPath, environ())
		if err != nil {
			return nil, err
		}
		c := &apiClient{base: strings.TrimRight(*url, "/"), key: *key, hc: &http.Client{Timeout: 30 * time.Second}}
		if c.base == "" {
			host, port, err := net.SplitHostPort(cfg.API.Addr)
			if err != nil {
				return nil, fmt.Errorf("api.addr: %w", err)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			scheme := "http"
			if cfg.API.TLSCert != "" {
				scheme = "https"
			}
			c.base = scheme + "://" + net.JoinHostPort(host, port)
		}
		if c.key == "" {
			c.key = os.Getenv("PUSHPULL_KEY")
		}
		if c.key == "" && len(cfg.API.Keys) > 0 {
			c.key = cfg.API.Keys[0]
		}
		if c.key == "" {
			b, err := os.ReadFile(filepath.Join(cfg.Server.DataDir, "api_key"))
			if err != nil {
				return nil, errors.New("no API key: pass --key, set PUSHPULL_KEY, or configure [api] keys")
			}
			c.key = strings.TrimSpace(string(b))
		}
		return c, nil
	}
}

// do sends body (JSON) to path and decodes the answer into out. API errors
// come back as their message with code and field.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			if e.Error.Field != "" {
				return fmt.Errorf("%s %s: %s: %s: %s", method, path, e.Error.Code, e.Error.Field, e.Error.Message)
			}
			return fmt.Errorf("%s %s: %s: %s", method, path, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0}
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return exitError{2}
	}
	return nil
}

// runToken mints a client token through POST /api/v1/tokens.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mk := clientFlags(fs)
	user := fs.String("user", "", "user `id` the token is for (required)")
	ttl := fs.Duration("ttl", 0, "token lifetime (default: the server's client.token_ttl)")
	client := fs.String("client", "", "client kind: web, mobile or desktop")
	asJSON := fs.Bool("json", false, "print the whole answer as JSON")
	var tags stringList
	fs.Var(&tags, "tag", "a tag the client may extend a watch on (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "pushpull token: --user is required")
		return exitError{2}
	}
	c, err := mk()
	if err != nil {
		return err
	}
	req := map[string]any{"user": *user}
	if *ttl > 0 {
		req["ttl"] = int(ttl.Seconds())
	}
	if len(tags) > 0 {
		req["tags"] = []string(tags)
	}
	if *client != "" {
		req["client"] = *client
	}
	var res json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", req, &res); err != nil {
		return err
	}
	if *asJSON {
		fmt.Fprintln(stdout, string(res))
		return nil
	}
	var t struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(res, &t); err != nil {
		return err
	}
	fmt.Fprintln(stdout, t.Token)
	return nil
}

// runSend publishes an event or a push from the shell.
//
//	pushpull send event --user 42 --module im --command message --params '{"text":"hi"}'
//	pushpull send push --user 42 --title Anna --body "Hi there"
//	pushpull send event --file body.json      (a whole request body; - for stdin)
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "event" && args[0] != "push") {
		fmt.Fprintln(stderr, "usage: pushpull send event|push [flags]  (-h for the flags)")
		return exitError{2}
	}
	kind := args[0]
	fs := flag.NewFlagSet("send "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	mk := clientFlags(fs)
	var users, tags stringList
	fs.Var(&users, "user", "recipient user id (repeatable, or comma-separated)")
	file := fs.String("file", "", "send this JSON request body as is (`path`, - for stdin)")
	// event
	fs.Var(&tags, "tag", "event: users watching this tag (repeatable)")
	shared := fs.Bool("shared", false, "event: every connected client")
	module := fs.String("module", "", "event: module_id")
	command := fs.String("command", "", "event: command")
	params := fs.String("params", "{}", "event: params as JSON")
	expiry := fs.Int("expiry", -1, "seconds kept for resume (event) or until useless (push); default: the server's")
	// push
	title := fs.String("title", "", "push: title")
	body := fs.String("body", "", "push: body text")
	app := fs.String("app", "", "push: only devices of this app id")
	badge := fs.Int("badge", -1, "push: badge number")
	sound := fs.String("sound", "", "push: sound")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	var req any
	if *file != "" {
		var b []byte
		if *file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*file)
		}
		if err != nil {
			return err
		}
		req = json.RawMessage(b)
	} else if kind == "event" {
		if !json.Valid([]byte(*params)) {
			return errors.New("--params: not valid JSON")
		}
		ev := map[string]any{"module_id": *module, "command": *command, "params": json.RawMessage(*params)}
		if len(users) > 0 {
			ev["users"] = []string(users)
		}
		if len(tags) > 0 {
			ev["tags"] = []string(tags)
		}
		if *shared {
			ev["shared"] = true
		}
		if *expiry >= 0 {
			ev["expiry"] = *expiry
		}
		req = map[string]any{"events": []any{ev}}
	} else {
		n := map[string]any{"users": []string(users), "title": *title, "body": *body}
		if *app != "" {
			n["app_id"] = *app
		}
		if *badge >= 0 {
			n["badge"] = *badge
		}
		if *sound != "" {
			n["sound"] = *sound
		}
		if *expiry >= 0 {
			n["expiry"] = *expiry
		}
		req = map[string]any{"notifications": []any{n}}
	}
	path := "/api/v1/events"
	if kind == "push" {
		path = "/api/v1/push"
	}
	var res json.RawMessage
	if err := c.do(ctx, http.MethodPost, path, req, &res); err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(res))
	return nil
}
