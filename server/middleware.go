package server

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	headerRequestID = "X-Request-Id"
	ctxRequestID    = "sdgate.request_id"
	maxRequestIDLen = 128
)

// requestIDMiddleware keeps a sane incoming X-Request-Id or makes one, and
// echoes it on the response.
func requestIDMiddleware(c *gin.Context) {
	id := c.GetHeader(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(ctxRequestID, id)
	c.Header(headerRequestID, id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// validRequestID accepts ids made of characters safe in logs and headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return false
		}
	}
	return true
}

// newRequestID is "req_" and 128 random bits in hex. Ids correlate log
// lines and need no secrecy: math/rand's per-thread ChaCha8, seeded from
// the OS, gives them without crypto/rand's system call per request.
func newRequestID() string {
	var random [16]byte
	binary.LittleEndian.PutUint64(random[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(random[8:], rand.Uint64())
	var id [4 + 32]byte
	copy(id[:], "req_")
	hex.Encode(id[4:], random[:])
	return string(id[:])
}

// accessLog writes one slog line per request and feeds the HTTP metrics.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	took := time.Since(start)
	status := c.Writer.Status()
	route := routeLabel(c)
	s.metrics.observeRequest(route, c.Request.Method, status, took)
	level := slog.LevelInfo
	if status >= 500 && status != StatusClientClosedRequest {
		level = slog.LevelError
	}
	ctx := c.Request.Context()
	if !s.log.Enabled(ctx, level) { // --log-level above info: no line to build
		return
	}

	attrs := make([]slog.Attr, 0, 16) // room for every field: no regrowth
	attrs = append(attrs,
		slog.String("request_id", requestID(c)),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.Duration("duration", took),
		slog.String("client", c.ClientIP()),
	)
	if k := callerKey(c); k != nil {
		attrs = append(attrs, slog.String("key_id", k.ID))
	}
	if v, ok := c.Get(logJobKey); ok {
		j := v.(jobLog)
		attrs = append(attrs, slog.String("model", j.model), slog.String("cache", j.cache),
			slog.Duration("queue_wait", j.queueWait), slog.Duration("generation", j.generation))
		if j.modelLoad > 0 {
			attrs = append(attrs, slog.Duration("model_load", j.modelLoad))
		}
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, slog.String("err", c.Errors.Last().Err.Error()))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// routeLabel is the matched route template, so metrics stay bounded.
func routeLabel(c *gin.Context) string {
	if p := c.FullPath(); p != "" {
		return p
	}
	return "unmatched"
}

// recovery turns a panic into a logged 500 in the envelope.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { // the client is gone; net/http handles it
			panic(p)
		}
		s.log.Error("panic while serving", "request_id", requestID(c), "panic", fmt.Sprint(p),
			"stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		s.writeError(c, fmt.Errorf("panic: %v", p))
	}()
	c.Next()
}

// requestBody caps the request body and gives the client a deadline to
// send it (timedBody, deadline.go), behind at most one copy of the
// request. A declared-too-large body is refused at once; a chunked one is
// capped while it is read (the handler's read error becomes 413). Image
// uploads get UploadLimit; the JSON routes Options.BodyLimit.
func (s *Server) requestBody(c *gin.Context) {
	limit := s.opts.BodyLimit
	if isUploadRoute(c.FullPath()) {
		limit = max(limit, UploadLimit)
	}
	if c.Request.ContentLength > limit {
		s.writeError(c, &http.MaxBytesError{Limit: limit})
		return
	}
	body := c.Request.Body
	if c.Request.ContentLength < 0 { // chunked: capped as it is read; a declared length is net/http's own cap
		body = http.MaxBytesReader(c.Writer, body, limit)
	}
	if body = s.timedBody(c, body); body != c.Request.Body {
		withBody(c, body)
	}
	c.Next()
}
