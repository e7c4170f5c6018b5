package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/push"

	"github.com/pushpull/pushpull/web/apierr"
)

func (s *Server) registerQueue(g *echo.Group) {
	g.GET("/queue", s.queueStats)
	g.GET("/queue/dead", s.listDead)
	g.POST("/queue/dead/retry", s.retryDead)
	g.DELETE("/queue/dead", s.deleteDead)
}

// QueueStats is the answer of GET /api/v1/queue.
type QueueStats struct {
	Due                 int     `json:"due"`
	Deferred            int     `json:"deferred"`
	InFlight            int     `json:"in_flight"`
	Dead                int     `json:"dead"`
	OldestDueAgeSeconds float64 `json:"oldest_due_age_seconds"`
	// Counters since the gateway started.
	Delivered uint64 `json:"delivered"`
	Retried   uint64 `json:"retried"`
	Expired   uint64 `json:"expired"`
	DeadTotal uint64 `json:"dead_total"`
	// Providers are per-provider answers (per app and reason), breaker
	// state, send latency and last success / failure (push.ProviderStats).
	Providers []push.ProviderStats `json:"providers"`
}

func (s *Server) queueStats(c echo.Context) error {
	st, err := s.Queue.Stats()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, QueueStats{
		Due: st.Due, Deferred: st.Deferred, InFlight: st.InFlight, Dead: st.Dead,
		OldestDueAgeSeconds: st.OldestDueAge.Seconds(),
		Delivered:           st.Delivered, Retried: st.Retried, Expired: st.Expired, DeadTotal: st.DeadTotal,
		Providers: s.providerStats(),
	})
}

func (s *Server) providerStats() []push.ProviderStats {
	if s.Push == nil {
		return []push.ProviderStats{}
	}
	ps := s.Push.ProviderStats()
	if ps == nil {
		ps = []push.ProviderStats{}
	}
	return ps
}

// DeadLetter is one dead job as the API shows it.
type DeadLetter struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id,omitempty"`
	User           string    `json:"user,omitempty"`
	DeviceID       string    `json:"device_id,omitempty"`
	Platform       string    `json:"platform"`
	AppID          string    `json:"app_id,omitempty"`
	Token          string    `json:"token"`
	Reason         string    `json:"reason"`
	LastError      string    `json:"last_error,omitempty"`
	Attempts       int       `json:"attempts"`
	CreatedAt      time.Time `json:"created_at"`
	DiedAt         time.Time `json:"died_at"`
}

func (s *Server) listDead(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apierr.Invalid("limit", "must be an integer from 1 to 1000")
		}
		limit = n
	}
	jobs, next, err := s.Queue.ListDead(c.Request().Context(), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	out := make([]DeadLetter, len(jobs))
	for i, j := range jobs {
		out[i] = DeadLetter{
			ID: j.ID, NotificationID: j.NotificationID, User: j.User, DeviceID: j.DeviceID,
			Platform: j.Platform, AppID: j.AppID, Token: j.Token, Reason: j.Reason,
			LastError: j.LastError, Attempts: j.Attempts, CreatedAt: j.CreatedAt, DiedAt: j.DiedAt,
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"jobs": out, "next_cursor": next})
}

// deadSelection is the body of the dead-letter retry and delete calls.
type deadSelection struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

func (s *Server) decodeSelection(c echo.Context) (deadSelection, error) {
	var b deadSelection
	if err := Decode(c, &b); err != nil {
		return b, err
	}
	switch {
	case b.All && len(b.IDs) > 0:
		return b, apierr.Invalid("ids", "give ids or all, not both")
	case !b.All && len(b.IDs) == 0:
		return b, apierr.Invalid("ids", "required (or \"all\": true)")
	case len(b.IDs) > s.Limits.MaxRecipients:
		return b, apierr.Invalid("ids", "at most %d ids", s.Limits.MaxRecipients)
	}
	return b, nil
}

func (s *Server) retryDead(c echo.Context) error {
	b, err := s.decodeSelection(c)
	if err != nil {
		return err
	}
	n, err := s.Queue.RetryDead(c.Request().Context(), b.IDs, b.All)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"retried": n})
}

func (s *Server) deleteDead(c echo.Context) error {
	b, err := s.decodeSelection(c)
	if err != nil {
		return err
	}
	n, err := s.Queue.DeleteDead(c.Request().Context(), b.IDs, b.All)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"deleted": n})
}
