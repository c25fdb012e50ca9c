package server

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// healthz answers while the process serves HTTP.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 once the default model can run, 503 otherwise.
func (s *Server) readyz(c *gin.Context) error {
	if err := s.gen.Ready(c.Request.Context()); err != nil {
		s.log.Warn("not ready", "request_id", requestID(c), "err", err, "default_model", s.gen.Default().ID)
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError,
			code: "not_ready", message: "not ready: " + err.Error()}
	}
	if s.opts.Gate != nil {
		if err := s.opts.Gate.Writable(c.Request.Context()); err != nil {
			s.log.Warn("not ready", "request_id", requestID(c), "err", err)
			return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError,
				code: "not_ready", message: "not ready: the usage store cannot write"}
		}
	}
	body := defaultModelFields(s.gen.Default())
	body["status"] = "ready"
	c.JSON(http.StatusOK, body)
	return nil
}

// defaultModelFields go in /readyz and the admin listing: which model
// serves unnamed requests and, when the configured default is gone (removed
// or broken since the last rescan), which one stands in.
func defaultModelFields(def models.DefaultState) gin.H {
	h := gin.H{"default_model": def.ID}
	if def.Missing {
		h["configured_default_model"] = def.Configured
		h["warning"] = fmt.Sprintf("the configured default model %q is not servable; %q serves in its place until a rescan finds it", def.Configured, def.ID)
	}
	return h
}
