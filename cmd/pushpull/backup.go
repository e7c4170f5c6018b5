package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// probeLock is how long backup waits for the database's file lock before
// concluding that a gateway holds it (bbolt: exclusive for a writer,
// shared for a reader).
const probeLock = 200 * time.Millisecond

// runBackup writes a consistent copy of the database to FILE.
//
// A running gateway holds bbolt's exclusive file lock, so the copy then
// comes from its publisher API (GET /api/v1/backup, one read transaction
// while it keeps serving). A stopped gateway's file is opened read-only and
// copied directly. Either way the copy is written to FILE.tmp, synced,
// checked to open as a consistent bbolt file, and only then renamed to
// FILE: a failed backup never leaves a half file under the final name.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pushpull backup [flags] FILE")
		fs.PrintDefaults()
	}
	mk := clientFlags(fs)
	online := fs.Bool("online", false, "always copy through the API (implied by --url)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0}
		}
		return exitError{2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	dst := fs.Arg(0)
	cfg, err := loadConfig(fs.Lookup("config").Value.String(), environ())
	if err != nil {
		return err
	}
	src := filepath.Join(cfg.Server.DataDir, dbFile)
	how := "offline"
	copyTo := func(w io.Writer) (int64, error) { return copyOffline(src, w) }
	if *online || fs.Lookup("url").Value.String() != "" || locked(src) {
		c, err := mk()
		if err != nil {
			return err
		}
		how = "online, from " + c.base
		copyTo = func(w io.Writer) (int64, error) { return c.download(ctx, w) }
	}
	n, err := writeVerified(dst, copyTo)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup (%s) written to %s: %d bytes\n", how, dst, n)
	return nil
}

// locked reports whether another process holds the database open for
// writing, i.e. a gateway is running on it.
func locked(path string) bool {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: probeLock})
	if err != nil {
		return errors.Is(err, bolt.ErrTimeout)
	}
	db.Close()
	return false
}

// copyOffline copies a database no process is writing.
func copyOffline(src string, w io.Writer) (int64, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, err
	}
	db, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: probeLock})
	if errors.Is(err, bolt.ErrTimeout) {
		return 0, fmt.Errorf("database %s was locked meanwhile: a gateway started; run backup again", src)
	}
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// download copies the database of the gateway behind c's API.
func (c *apiClient) download(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	// No overall timeout: a large database takes as long as it takes; the
	// connection's failure or ctx ends it.
	res, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return 0, fmt.Errorf("GET /api/v1/backup: HTTP %d: %s", res.StatusCode, b)
	}
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return n, err
	}
	if res.ContentLength >= 0 && n != res.ContentLength {
		return n, fmt.Errorf("copy cut short: %d of %d bytes", n, res.ContentLength)
	}
	return n, nil
}

// writeVerified writes dst through a temporary file that is synced and
// checked before it takes dst's name.
func writeVerified(dst string, copyTo func(io.Writer) (int64, error)) (int64, error) {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp)
		}
	}()
	n, err := copyTo(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := verifyDB(tmp); err != nil {
		return n, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return n, err
	}
	keep = true
	// The rename is durable once the directory is synced.
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// verifyDB opens path as bbolt and runs its consistency check.
func verifyDB(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: probeLock})
	if err != nil {
		return fmt.Errorf("the copy is not a bbolt database: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("the copy is inconsistent: %w", err)
		}
		return nil
	})
}
