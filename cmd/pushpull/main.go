// Command pushpull is the push & pull gateway: run with no arguments it
// serves on its embedded defaults (a bbolt file in ./data, the publisher
// API on 127.0.0.1:8895, the client listener on :8893).
//
//	pushpull [serve] [--config FILE]   run the gateway
//	pushpull version                   print the version
//	pushpull compact [--config FILE] [--out FILE]
//	                                   rewrite the database offline
//	pushpull backup [--config FILE] FILE
//	                                   copy the database (online through the API when running)
//	pushpull demo                      the push pipeline against in-process fake APNs and FCM
//	pushpull token --user 42           mint a client token (via the publisher API)
//	pushpull send event|push ...       publish from the shell (via the publisher API)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module build info.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		if v == "(devel)" {
			v = "dev"
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "dev"
}

const usage = `usage: pushpull [command] [flags]

commands:
  serve     run the gateway (the default)
  version   print the version
  compact   rewrite the database file offline to reclaim space
  backup    write a consistent copy of the database to FILE (works while running)
  token     mint a client token through the running gateway's API
  send      publish an event or a push through the running gateway's API
  demo      run the push pipeline against in-process fake APNs and FCM
  help      show this text

Run "pushpull <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries the exit status a command wants.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, args, stderr)
	case "version":
		fmt.Fprintln(stdout, "pushpull", versionString())
	case "compact":
		err = runCompact(args, stdout, stderr)
	case "backup":
		err = runBackup(ctx, args, stdout, stderr)
	case "demo":
		err = runDemo(ctx, args)
		if errors.Is(err, flag.ErrHelp) {
			err = nil
		}
	case "token":
		err = runToken(ctx, args, stdout, stderr)
	case "send":
		err = runSend(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "pushpull: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "pushpull:", err)
		return 1
	}
}
