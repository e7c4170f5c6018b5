package queue

import (
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"
)

// Compact rewrites the bbolt file srcPath into a new file dstPath, which
// must not exist, leaving out the free pages (a bbolt file never shrinks
// by itself). It is an offline operation: nothing may have srcPath open.
// It copies every bucket, not only the queue's.
func Compact(dstPath, srcPath string) error {
	if _, err := os.Stat(dstPath); err == nil {
		return fmt.Errorf("queue: compact: %s already exists: %w", dstPath, ErrInvalid)
	}
	src, err := bbolt.Open(srcPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("queue: compact: open %s: %w", srcPath, err)
	}
	defer src.Close()
	dst, err := bbolt.Open(dstPath, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("queue: compact: create %s: %w", dstPath, err)
	}
	if err := bbolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		return fmt.Errorf("queue: compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("queue: compact: close %s: %w", dstPath, err)
	}
	return nil
}
