package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
)

// healthz answers while the process serves HTTP.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 once the default model can run, 503 otherwise.
func (s *Server) readyz(c *gin.Context) error {
	if err := s.gen.Ready(c.Request.Context()); err != nil {
		s.log.Warn("not ready", "request_id", requestID(c), "err", err)
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError,
			code: "not_ready", message: "not ready: " + err.Error()}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}
