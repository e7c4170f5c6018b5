package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI is the OpenAPI 3.1 description of the publisher API. A test
// keeps it and the registered routes in step.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) registerOpenAPI(g *echo.Group) {
	g.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/json", openAPI)
	})
}
