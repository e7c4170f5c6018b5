package api

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/apierr"
)

// Server holds what the publisher API handlers need. Routes are added by
// Register; each concern registers its own routes from its own file.
type Server struct {
	Queue   QueueAdmin
	Devices DeviceStore
	Push    *push.Service
	Live    *live.Service
	Tokens  *token.Issuer
	Limits  Limits
	Logger  *slog.Logger
	// ClientURL is where clients reach the client listener, for
	// GET /api/v1/config; PingInterval is what it tells them.
	ClientURL    string
	PingInterval time.Duration
	// DB, when set, is copied by GET /api/v1/backup (backup.go); without
	// it the route answers 503.
	DB *bolt.DB
}

// Register adds every /api/v1 route to g, which must already require an
// API key (RequireKey).
func (s *Server) Register(g *echo.Group) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Limits == (Limits{}) {
		s.Limits = DefaultLimits
	}
	s.registerOpenAPI(g)
	s.registerDevices(g)
	s.registerQueue(g)
	s.registerBackup(g)
	if s.Push != nil {
		RegisterPush(g, s.Push, s.Limits, s.Logger)
	}
	if s.Live != nil {
		s.registerLive(g)
	}
}

// MapError maps the domain errors of queue and devices to API errors; it
// is given to the listeners' error handler (apierr.Handler).
func MapError(err error) *apierr.Error {
	var ve *devices.ValidationError
	switch {
	case errors.As(err, &ve):
		return apierr.Invalid(ve.Field, "%s", ve.Message)
	case errors.Is(err, devices.ErrNotFound), errors.Is(err, queue.ErrNotFound):
		return apierr.New(apierr.CodeNotFound, "not found")
	case errors.Is(err, queue.ErrInvalid):
		return apierr.New(apierr.CodeInvalidArgument, "%v", err)
	case errors.Is(err, queue.ErrClosed):
		return apierr.New(apierr.CodeUnavailable, "shutting down")
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.New(apierr.CodeUnavailable, "timed out: try again")
	case errors.Is(err, live.ErrUnavailable):
		e := apierr.New(apierr.CodeUnavailable, "cluster unavailable: the event was not published (the call's pushes may be queued already); try again later")
		e.RetryAfter = 2 * time.Second
		e.Err = err
		return e
	case errors.Is(err, queue.ErrStorage), errors.Is(err, devices.ErrStorage), storageUnavailable(err):
		// Nothing was committed: the caller may retry once space returns.
		e := apierr.New(apierr.CodeUnavailable, "storage unavailable: nothing was stored, try again later")
		e.RetryAfter = 5 * time.Second
		e.Err = err
		return e
	}
	return nil
}

// storageUnavailable reports a write the file system refused (full, over
// quota, file too large, read-only, I/O error): a condition of the host,
// not a bug, that clears when an operator acts.
func storageUnavailable(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EROFS, syscall.EIO} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
