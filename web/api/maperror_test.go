package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/queue"
)

// TestMapErrorClusterFailures: a NATS failure of the queue or of the event
// stream is a 503 with Retry-After, never a 500.
func TestMapErrorClusterFailures(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: event 0 not published: %w", live.ErrUnavailable, errors.New("no quorum")),
		fmt.Errorf("%w: %w", queue.ErrStorage, errors.New("nats: timeout")),
	} {
		e := MapError(err)
		if e == nil || e.Status() != http.StatusServiceUnavailable || e.RetryAfter <= 0 {
			t.Errorf("%v -> %+v, want 503 with Retry-After", err, e)
		}
	}
}
