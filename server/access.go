// Access and information: what a caller may see (models its key can use,
// metrics for admins) and which request headers the server believes
// (forwarded headers only from trusted proxies, no encoded bodies).

package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
)

// parseProxies reads TrustedProxies as gin does: IPs or CIDR prefixes.
func parseProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted proxy %q is neither an IP nor a CIDR prefix", ErrBadOptions, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// fromTrustedProxy reports whether the request's peer is a configured
// proxy, whose X-Forwarded-* headers the server may believe.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.proxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// refuseEncodedBodies answers 415 to a body in a Content-Encoding the
// server does not decode (it decodes none): reading gzip bytes as JSON or
// multipart would only give a confusing 400.
func (s *Server) refuseEncodedBodies(c *gin.Context) {
	ce := strings.TrimSpace(c.GetHeader("Content-Encoding"))
	if ce == "" || strings.EqualFold(ce, "identity") {
		c.Next()
		return
	}
	s.writeError(c, &httpError{status: http.StatusUnsupportedMediaType, typ: compat.TypeInvalidRequest,
		code: "unsupported_content_encoding", message: fmt.Sprintf(
			"Unsupported Content-Encoding %q: send the request body uncompressed.", ce)})
}

// metricsRoute is /metrics: an admin key's when keys are on, absent when
// the metrics live on their own listener (Options.MetricsSeparate).
func (s *Server) metricsRoute(r *gin.Engine) {
	if s.opts.MetricsSeparate {
		return
	}
	h := gin.WrapH(s.metrics.handler())
	if s.opts.Gate == nil || s.opts.NoAuth {
		r.GET("/metrics", h)
		return
	}
	r.GET("/metrics", s.authenticate, s.handle(func(c *gin.Context) error {
		return s.requireAdmin(c)
	}), h)
}

// MetricsHandler serves the Prometheus text format without a key, for a
// listener of its own (sdgate serve --metrics-addr).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// visible reports whether the caller's key may use (and so see) model id.
func visible(c *gin.Context, id string) bool {
	k := callerKey(c)
	return k == nil || k.CanUse(id)
}
