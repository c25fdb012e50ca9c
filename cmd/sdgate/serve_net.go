package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sdgate/sdgate/internal/connlimit"
	"github.com/sdgate/sdgate/server"
)

// netFlags are serve's connection hardening: timeouts that bound what a
// slow or idle client holds, caps on open connections, who may forward
// headers, and where /metrics lives.
type netFlags struct {
	headerTimeout  time.Duration
	bodyTimeout    time.Duration
	idleTimeout    time.Duration
	maxConns       int
	maxConnsPerIP  int
	trustedProxies string
	metricsAddr    string
}

func (f *netFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.headerTimeout, "header-timeout", 10*time.Second, "time a client has to send its request headers")
	fs.DurationVar(&f.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "time a client has to send its request body (408 after; never cuts a generation or a stream)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "close a keep-alive connection idle this long")
	fs.IntVar(&f.maxConns, "max-conns", 1024, "open connections in all; more are answered 503 and closed (0: no cap)")
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", 64, "open connections from one client address, trusted proxies exempt (0: no cap)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "IPs or CIDRs of reverse proxies whose X-Forwarded-* headers are believed, comma-separated")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve /metrics without a key on this address (e.g. 127.0.0.1:9090) instead of behind an admin key on --addr")
}

// proxies is --trusted-proxies as a list (nil when empty).
func (f *netFlags) proxies() []string {
	var out []string
	for _, p := range strings.Split(f.trustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// exempt parses the trusted proxies for the per-address cap.
func (f *netFlags) exempt() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range f.proxies() {
		if pre, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an IP nor a CIDR prefix", p)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// listen wraps ln in the connection caps.
func (f *netFlags) listen(ln net.Listener) (net.Listener, error) {
	exempt, err := f.exempt()
	if err != nil {
		return nil, err
	}
	return connlimit.New(ln, connlimit.Options{Max: f.maxConns, PerAddr: f.maxConnsPerIP, Exempt: exempt}), nil
}

// httpServer is the API's http.Server. No ReadTimeout or WriteTimeout:
// both stay on the connection for the whole request and would cut long
// generations and SSE streams; the body deadline lives in the server
// package and is lifted once the body is read.
func (f *netFlags) httpServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: f.headerTimeout, IdleTimeout: f.idleTimeout,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}
