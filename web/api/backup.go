package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/web/apierr"
)

// BackupContentType is the media type of GET /api/v1/backup: a bbolt
// database file.
const BackupContentType = "application/vnd.pushpull.bbolt"

func (s *Server) registerBackup(g *echo.Group) {
	g.GET("/backup", s.backup)
}

// backup streams a consistent copy of the whole database from one read
// transaction (bbolt's online backup): writers go on meanwhile, and the
// copy is the state at the transaction's start. bbolt locks the file
// exclusively, so a running gateway's database can only be copied this
// way. Content-Length is the exact size, so a client detects a copy cut
// short.
func (s *Server) backup(c echo.Context) error {
	if s.DB == nil {
		return apierr.New(apierr.CodeUnavailable, "backup is not available on this server")
	}
	return s.DB.View(func(tx *bolt.Tx) error {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, BackupContentType)
		h.Set(echo.HeaderContentLength, strconv.FormatInt(tx.Size(), 10))
		h.Set(echo.HeaderContentDisposition, `attachment; filename="pushpull.db"`)
		h.Set("Cache-Control", "no-store")
		c.Response().WriteHeader(http.StatusOK)
		if _, err := tx.WriteTo(c.Response()); err != nil {
			// The status is sent: the short body is what tells the client.
			s.Logger.Warn("backup: copy cut short", "err", err)
		}
		return nil
	})
}
