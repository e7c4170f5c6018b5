package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/web/apierr"
)

// EventsRequest is the body of POST /api/v1/events.
type EventsRequest struct {
	Events []EventItem `json:"events"`
}

// EventItem is one event, as API.md documents it.
type EventItem struct {
	Users     []string        `json:"users"`
	Tags      []string        `json:"tags"`
	Shared    bool            `json:"shared"`
	SkipUsers []string        `json:"skip_users"`
	ModuleID  string          `json:"module_id"`
	Command   string          `json:"command"`
	Params    json.RawMessage `json:"params"`
	Extra     json.RawMessage `json:"extra"`
	// Expiry in seconds; omitted: the server default; 0: live only.
	Expiry *int64 `json:"expiry"`
	// Push is a notification (without users/devices) for recipients who
	// are not online.
	Push *PushNotification `json:"push"`
	// AckTimeout ("30s", or seconds): online users who do not ack the event
	// in time get the push too.
	AckTimeout json.RawMessage `json:"ack_timeout"`
}

func (s *Server) registerLive(g *echo.Group) {
	g.POST("/events", s.postEvents)
	g.POST("/watch", s.addWatch)
	g.POST("/watch/extend", s.extendWatch)
	g.DELETE("/watch", s.deleteWatch)
	g.GET("/watch/:tag", s.listWatchers)
	g.GET("/online", s.online)
	g.POST("/tokens", s.mintToken)
	g.GET("/config", s.clientConfig)
}

func liveError(err error) error {
	var fe *live.FieldError
	switch {
	case errors.As(err, &fe):
		return apierr.Invalid(fe.Field, "%s", fe.Message)
	case errors.Is(err, live.ErrNoPush):
		return apierr.New(apierr.CodeUnavailable, "push is not available")
	}
	return err
}

func parseAckTimeout(raw json.RawMessage) (time.Duration, *apierr.Error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			return d, nil
		}
	}
	return 0, apierr.Invalid("ack_timeout", `must be a duration like "30s" or a number of seconds`)
}

// toEvent validates one item into a live.Event.
func (s *Server) toEvent(it *EventItem, ph *pushHandlers, now time.Time) (live.Event, *apierr.Error) {
	for _, l := range []struct {
		name string
		n    int
	}{{"users", len(it.Users)}, {"tags", len(it.Tags)}, {"skip_users", len(it.SkipUsers)}} {
		if l.n > s.Limits.MaxRecipients {
			return live.Event{}, apierr.Invalid(l.name, "at most %d recipients", s.Limits.MaxRecipients)
		}
	}
	e := live.Event{
		Users: it.Users, Tags: it.Tags, Shared: it.Shared, SkipUsers: it.SkipUsers,
		ModuleID: it.ModuleID, Command: it.Command, Params: nullToNil(it.Params), Extra: nullToNil(it.Extra),
	}
	if it.Expiry != nil {
		if *it.Expiry < 0 || *it.Expiry > maxDelaySeconds {
			return e, apierr.Invalid("expiry", "must be a number of seconds from 0")
		}
		d := time.Duration(*it.Expiry) * time.Second
		e.Expiry = &d
	}
	d, aerr := parseAckTimeout(it.AckTimeout)
	if aerr != nil {
		return e, aerr
	}
	e.AckTimeout = d
	if it.Push != nil {
		if s.Push == nil {
			return e, apierr.New(apierr.CodeUnavailable, "push is not available")
		}
		if len(it.Push.Users) > 0 || len(it.Push.Devices) > 0 || len(it.Push.SkipUsers) > 0 {
			return e, apierr.Invalid("push.users", "an event's push goes to the event's recipients: leave users, devices and skip_users out")
		}
		r, perr := ph.toRequest(it.Push, now)
		if perr != nil {
			return e, perr.WithField("push")
		}
		// Validate as the service would, with a stand-in recipient.
		check := r
		check.Users = []string{"x"}
		if check.WhenOnline == "" {
			check.WhenOnline = "skip"
		}
		if err := s.Push.Validate(&check); err != nil {
			return e, fieldError(err).WithField("push")
		}
		e.Push = &r
	}
	if err := s.Live.Validate(&e); err != nil {
		var fe *live.FieldError
		if errors.As(err, &fe) {
			return e, apierr.Invalid(fe.Field, "%s", fe.Message)
		}
		return e, &apierr.Error{Code: apierr.CodeInternal, Message: "internal error", Err: err}
	}
	return e, nil
}

func (s *Server) postEvents(c echo.Context) error {
	var body EventsRequest
	if err := Decode(c, &body); err != nil {
		return err
	}
	switch n := len(body.Events); {
	case n == 0:
		return apierr.Invalid("events", "at least one event is required")
	case n > s.Limits.MaxItems:
		return apierr.Invalid("events", "at most %d events per request", s.Limits.MaxItems)
	}
	ph := &pushHandlers{svc: s.Push, limits: s.Limits, log: s.Logger, now: time.Now}
	now := time.Now()
	evs := make([]live.Event, len(body.Events))
	for i := range body.Events {
		e, err := s.toEvent(&body.Events[i], ph, now)
		if err != nil {
			return err.WithField(Item("events", i))
		}
		evs[i] = e
	}
	res, err := s.Live.Publish(c.Request().Context(), evs)
	if err != nil {
		var pe *push.BatchError
		if errors.As(err, &pe) || res == nil {
			return liveError(err)
		}
		return &apierr.Error{Code: apierr.CodeUnavailable, Message: err.Error(), Err: err}
	}
	return c.JSON(http.StatusAccepted, map[string]any{"results": res})
}

type watchBody struct {
	Users []string `json:"users"`
	Tags  []string `json:"tags"`
	TTL   *int64   `json:"ttl"`
}

func (s *Server) decodeWatch(c echo.Context) (watchBody, error) {
	var b watchBody
	if err := Decode(c, &b); err != nil {
		return b, err
	}
	if len(b.Users) > s.Limits.MaxRecipients {
		return b, apierr.Invalid("users", "at most %d users", s.Limits.MaxRecipients)
	}
	if len(b.Tags) > s.Limits.MaxRecipients {
		return b, apierr.Invalid("tags", "at most %d tags", s.Limits.MaxRecipients)
	}
	return b, nil
}

func (s *Server) addWatch(c echo.Context) error {
	b, err := s.decodeWatch(c)
	if err != nil {
		return err
	}
	var ttl time.Duration
	if b.TTL != nil {
		if *b.TTL <= 0 || *b.TTL > maxDelaySeconds {
			return apierr.Invalid("ttl", "must be a positive number of seconds")
		}
		ttl = time.Duration(*b.TTL) * time.Second
	}
	if err := s.Live.AddWatch(b.Users, b.Tags, ttl); err != nil {
		return liveError(err)
	}
	if ttl == 0 {
		ttl = s.Live.Options().WatchTTL
	}
	return c.JSON(http.StatusOK, map[string]any{"users": b.Users, "tags": b.Tags, "ttl": int64(ttl / time.Second)})
}

func (s *Server) extendWatch(c echo.Context) error {
	b, err := s.decodeWatch(c)
	if err != nil {
		return err
	}
	if b.TTL != nil {
		return apierr.Invalid("ttl", "extend keeps each watch's own ttl")
	}
	res, err := s.Live.ExtendWatch(b.Users, b.Tags)
	if err != nil {
		return liveError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"tags": res})
}

func (s *Server) deleteWatch(c echo.Context) error {
	b, err := s.decodeWatch(c)
	if err != nil {
		return err
	}
	if b.TTL != nil {
		return apierr.Invalid("ttl", "not used by delete")
	}
	n, err := s.Live.DeleteWatch(b.Users, b.Tags)
	if err != nil {
		return liveError(err)
	}
	return c.JSON(http.StatusOK, map[string]int{"deleted": n})
}

func (s *Server) listWatchers(c echo.Context) error {
	tag := c.Param("tag")
	if msg := live.ValidID(tag); msg != "" {
		return apierr.Invalid("tag", "%s", msg)
	}
	users := s.Live.Watchers(tag)
	if users == nil {
		users = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tag": tag, "users": users})
}

func (s *Server) online(c echo.Context) error {
	q := c.QueryParam("users")
	if q == "" {
		return c.JSON(http.StatusOK, s.Live.Totals())
	}
	users := strings.Split(q, ",")
	if len(users) > s.Limits.MaxRecipients {
		return apierr.Invalid("users", "at most %d users", s.Limits.MaxRecipients)
	}
	for i, u := range users {
		if msg := live.ValidID(u); msg != "" {
			return apierr.Invalid(Item("users", i), "%s", msg)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"users": s.Live.Online(users)})
}

type tokenBody struct {
	User   string   `json:"user"`
	TTL    int64    `json:"ttl"`
	Tags   []string `json:"tags"`
	Client string   `json:"client"`
}

func (s *Server) mint(user string, ttlSecs int64, tags []string, client string) (string, time.Time, error) {
	if msg := live.ValidID(user); msg != "" {
		return "", time.Time{}, apierr.Invalid("user", "%s", msg)
	}
	for i, t := range tags {
		if msg := live.ValidID(t); msg != "" {
			return "", time.Time{}, apierr.Invalid(Item("tags", i), "%s", msg)
		}
	}
	if len(tags) > 100 {
		return "", time.Time{}, apierr.Invalid("tags", "at most 100 tags")
	}
	switch client {
	case "", "web", "mobile", "desktop":
	default:
		return "", time.Time{}, apierr.Invalid("client", "must be web, mobile or desktop")
	}
	if ttlSecs < 0 || time.Duration(ttlSecs)*time.Second > s.Tokens.MaxTTL() {
		return "", time.Time{}, apierr.Invalid("ttl", "must be from 1 to %d seconds", int64(s.Tokens.MaxTTL()/time.Second))
	}
	tok, exp, err := s.Tokens.Mint(user, time.Duration(ttlSecs)*time.Second, tags, client)
	if err != nil {
		return "", time.Time{}, apierr.Invalid("", "%v", err)
	}
	return tok, exp, nil
}

func (s *Server) mintToken(c echo.Context) error {
	var b tokenBody
	if err := Decode(c, &b); err != nil {
		return err
	}
	tok, exp, err := s.mint(b.User, b.TTL, b.Tags, b.Client)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
}

// clientConfig is everything a client needs to connect (the role of
// Bitrix's pull.config.get).
func (s *Server) clientConfig(c echo.Context) error {
	user := c.QueryParam("user")
	tok, exp, err := s.mint(user, 0, nil, c.QueryParam("client"))
	if err != nil {
		return err
	}
	base := strings.TrimRight(s.ClientURL, "/")
	ws := "ws" + strings.TrimPrefix(base, "http")
	return c.JSON(http.StatusOK, map[string]any{
		"user": user, "token": tok, "expires_at": exp.UTC().Format(time.RFC3339),
		"epoch": s.Live.Hub().Epoch(), "ping_interval": int(s.PingInterval / time.Second), "protocol": 1,
		"urls": map[string]string{
			"websocket": ws + "/sub/ws", "poll": base + "/sub/poll", "sse": base + "/sub/sse",
			"watch": base + "/sub/watch", "devices": base + "/sub/devices", "script": base + "/pullclient.js",
		},
	})
}
