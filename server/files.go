package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
)

const imageFilesPath = "/v1/files/images/"

// errImageStore: the image store could not answer (a shared store that is
// down); the client gets 503 and may retry.
var errImageStore = errors.New("image store unavailable")

// getImageFile serves a stored response_format=url image until it expires.
func (s *Server) getImageFile(c *gin.Context) error {
	img, ok, err := s.store.Get(c.Request.Context(), c.Param("name"))
	if err != nil {
		return fmt.Errorf("%w: %w", errImageStore, err)
	}
	if !ok {
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, code: "file_not_found",
			message: "No such image: it never existed or its URL has expired."}
	}
	left := img.Expires.Sub(s.opts.Now())
	c.Header("Cache-Control", "private, max-age="+strconv.Itoa(int(math.Max(0, left.Seconds()))))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, img.ContentType, img.Data)
	return nil
}

// publicBaseURL is where clients reach this server: the configured URL, or
// what a reverse proxy says in X-Forwarded-Proto / X-Forwarded-Host, or the
// request's own scheme and Host.
func (s *Server) publicBaseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if !s.fromTrustedProxy(r) { // anyone else's forwarded headers would rewrite our links
		return scheme + "://" + host
	}
	if p := firstHeaderValue(r, "X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	if h := firstHeaderValue(r, "X-Forwarded-Host"); validHost(h) {
		host = h
	}
	return scheme + "://" + host
}

// firstHeaderValue is the first of a comma-separated list (the client-side
// proxy's), lower-cased and trimmed.
func firstHeaderValue(r *http.Request, name string) string {
	v, _, _ := strings.Cut(r.Header.Get(name), ",")
	return strings.ToLower(strings.TrimSpace(v))
}

// validHost accepts host[:port] characters only, so a header cannot smuggle
// a path or another URL into image links.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':' || r == '[' || r == ']'
		if !ok {
			return false
		}
	}
	return true
}
