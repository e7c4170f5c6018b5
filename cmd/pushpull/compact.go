package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// runCompact rewrites the database into a fresh file (bbolt never shrinks
// a file by itself) and swaps it in, keeping the old one as .bak. The
// gateway must be stopped: the file lock makes sure of it.
func runCompact(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PUSHPULL_CONFIG"), "TOML configuration `file`")
	out := fs.String("out", "", "write the compacted copy to `file` and leave the database as it is")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	cfg, err := loadConfig(*cfgPath, environ())
	if err != nil {
		return err
	}
	src := filepath.Join(cfg.Server.DataDir, dbFile)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	dst := *out
	if dst == "" {
		dst = src + ".compact"
	}
	if err := compactFile(dst, src); err != nil {
		return err
	}
	before, _ := os.Stat(src)
	after, _ := os.Stat(dst)
	if *out == "" {
		if err := os.Rename(src, src+".bak"); err != nil {
			return fmt.Errorf("compact: %w", err)
		}
		if err := os.Rename(dst, src); err != nil {
			return fmt.Errorf("compact: %w", err)
		}
		dst = src
	}
	fmt.Fprintf(stdout, "compacted %s: %d -> %d bytes\n", dst, before.Size(), after.Size())
	return nil
}

func compactFile(dst, src string) error {
	in, err := openDB(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("compact: %s already exists", dst)
	}
	o, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := bolt.Compact(o, in, 64<<20); err != nil {
		o.Close()
		os.Remove(dst)
		return fmt.Errorf("compact: %w", err)
	}
	if err := o.Sync(); err != nil {
		o.Close()
		return fmt.Errorf("compact: %w", err)
	}
	return o.Close()
}
