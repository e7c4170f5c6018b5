package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/apierr"
)

// GET /backup streams a database that opens and holds the queued jobs,
// with the exact Content-Length; without a DB it is unavailable.
func TestBackupStreamsTheDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "live.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	q, err := queue.Open(db, queue.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 25 {
		if err := q.Enqueue(context.Background(), &queue.Job{Platform: "fcm", AppID: "a", Token: "tok" + strconv.Itoa(i), Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}

	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(log, MapError)
	(&Server{DB: db, Logger: log}).registerBackup(e.Group("/api/v1"))
	(&Server{Logger: log}).registerBackup(e.Group("/nodb"))
	hs := httptest.NewServer(e)
	defer hs.Close()

	res, err := http.Get(hs.URL + "/api/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != BackupContentType {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	copyPath := filepath.Join(dir, "copy.db")
	f, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, res.Body)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != res.ContentLength || n == 0 {
		t.Fatalf("body %d bytes, Content-Length %d", n, res.ContentLength)
	}

	cp, err := bolt.Open(copyPath, 0o600, nil)
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	defer cp.Close()
	cq, err := queue.Open(cp, queue.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer cq.Close()
	st, err := cq.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Due != 25 {
		t.Fatalf("the copy holds %d due jobs, want 25", st.Due)
	}

	res2, err := http.Get(hs.URL + "/nodb/backup")
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("without a DB: %d", res2.StatusCode)
	}
}
