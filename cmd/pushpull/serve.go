package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dbFile is the database file inside the data directory.
const dbFile = "pushpull.db"

// restartCloseReason goes with close code 1012 on shutdown. It advises
// clients to spread their reconnects uniformly over the window it names
// (pullclient.js reads it), so that a restart is not followed by every
// client of the node reconnecting in the same instant. The window is
// longer than a typical restart, so most reconnects find the new process.
const restartCloseReason = "server restart; reconnect_within_ms=5000"

// newLogger builds the process logger from [log]. The level lives in the
// returned LevelVar so that SIGHUP can change it without a new logger.
func newLogger(cfg LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lvl := new(slog.LevelVar)
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lvl
	}
	return slog.New(slog.NewTextHandler(w, opts)), lvl
}

// isSecretAttr reports whether an attribute key names a credential. Call
// sites redact those already; this is the safety net for one that forgets.
func isSecretAttr(key string) bool {
	switch strings.ToLower(key) {
	case "token", "device_token", "api_key", "secret", "password", "jwt", "authorization":
		return true
	}
	return false
}

// redactAttr keeps the first 8 characters of a secret attribute. Values
// already redacted (short) pass unchanged, so call-site redaction and this
// one do not compound.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if isSecretAttr(a.Key) && a.Value.Kind() == slog.KindString {
		if v := a.Value.String(); len(v) > 12 {
			return slog.String(a.Key, v[:8]+"…")
		}
	}
	return a
}

// openDB opens the bbolt file, failing fast with a clear message when
// another process holds it.
func openDB(path string) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("database %s is locked by another process (is another pushpull running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return db, nil
}

// generatedSecret returns the secret stored in file, creating it with a
// fresh random value on first use. It lets a gateway on its defaults be
// secure without asking the user for secrets first.
func generatedSecret(file string) (value string, created bool, err error) {
	if b, err := os.ReadFile(file); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return s, true, nil
}

func parseServeFlags(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PUSHPULL_CONFIG"), "TOML configuration `file` (default: built-in defaults; env PUSHPULL_CONFIG)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", exitError{0}
		}
		return "", exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushpull %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", exitError{2}
	}
	return *cfgPath, nil
}

// environ is the process environment without the PUSHPULL_ variables that
// are not configuration keys: PUSHPULL_CONFIG (the file) and PUSHPULL_KEY
// (the API key the token and send commands present).
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHPULL_CONFIG=") && !strings.HasPrefix(kv, "PUSHPULL_KEY=") {
			out = append(out, kv)
		}
	}
	return out
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	cfgPath, err := parseServeFlags("serve", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath, environ())
	if err != nil {
		return err
	}
	log, level := newLogger(cfg.Log, stderr)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// SIGHUP is caught from the start: its default action would kill the
	// process while it is still building.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	app, err := build(cfg, log)
	if err != nil {
		return err
	}
	if err := app.start(); err != nil {
		app.close(context.Background())
		return err
	}
	log.Info("pushpull started", "version", versionString(),
		"api", app.web.APIAddr(), "client", app.web.ClientAddr(),
		"db", filepath.Join(cfg.Server.DataDir, dbFile))
	rl := newReloader(cfgPath, cfg, level, app, log)

wait:
	for {
		select {
		case sig := <-sigs:
			log.Info("shutting down: signal received (a second signal exits at once)", "signal", sig.String(),
				"timeout", cfg.Server.ShutdownTimeout.String())
			break wait
		case <-hups:
			rl.reload(ctx)
		case err := <-app.errc:
			log.Error("listener failed, shutting down", "err", err)
			break wait
		case <-ctx.Done():
			break wait
		}
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	done := make(chan struct{})
	go func() {
		app.close(sctx)
		close(done)
	}()
	select {
	case <-done:
		log.Info("pushpull stopped")
		return nil
	case sig := <-sigs:
		log.Warn("second signal: exiting at once", "signal", sig.String())
		return exitError{130}
	}
}
