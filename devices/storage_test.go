package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestDiskFullIsErrStorage: on a full file system a registration fails
// with ErrStorage (the API's 503), stores nothing, and works again once
// space returns. Needs to mount a tmpfs (root); skipped otherwise.
func TestDiskFullIsErrStorage(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	db, err := bbolt.Open(filepath.Join(dir, "d.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := Open(db, Options{PurgeInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// Fill the file system, leaving the database no room to grow.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	ctx := context.Background()
	var failed error
	for i := 0; i < 2000 && failed == nil; i++ {
		_, failed = reg.Register(ctx, Device{User: "u", Platform: PlatformFCM, Token: fmt.Sprintf("tok-%d-%0512d", i, i)})
	}
	if !errors.Is(failed, ErrStorage) {
		t.Fatalf("registering on a full disk: %v, want ErrStorage", failed)
	}
	os.Remove(filler)
	if _, err := reg.Register(ctx, Device{User: "u", Platform: PlatformFCM, Token: "after-space-returns"}); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		for e := range tx.Check() {
			return e
		}
		return nil
	}); err != nil {
		t.Fatalf("database inconsistent: %v", err)
	}
}
