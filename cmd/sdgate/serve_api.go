package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sdgate/sdgate/server"
)

// apiFlags: the HTTP API listener that serve and gateway share, with its
// hardening (netFlags) and its drain on SIGTERM.
type apiFlags struct {
	addr, publicURL string
	imageTTL, drain time.Duration
	bodyLimit       int64
	net             netFlags
	admission       admissionFlags
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.publicURL, "public-url", "", "scheme://host[:port] clients reach us at, for image URLs (default: from X-Forwarded-*/Host)")
	fs.DurationVar(&f.imageTTL, "image-ttl", time.Hour, "how long response_format=url images stay")
	fs.Int64Var(&f.bodyLimit, "body-limit", 1<<20, "largest JSON request body in bytes (413 above)")
	fs.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on SIGTERM, time to finish in-flight requests before cancelling them")
	f.net.register(fs)
	f.admission.register(fs)
}

// check refuses bad listener settings before anything is started.
func (f *apiFlags) check() error { return f.admission.validate() }

// options sets the listener's part of the server options.
func (f *apiFlags) options(o server.Options) server.Options {
	o.PublicURL, o.ImageTTL, o.BodyLimit = f.publicURL, f.imageTTL, f.bodyLimit
	o.TrustedProxies, o.BodyTimeout, o.MetricsSeparate = f.net.proxies(), f.net.bodyTimeout, f.net.metricsAddr != ""
	f.admission.apply(&o)
	return o
}

// serveHooks is what differs between the processes that serve the API.
type serveHooks struct {
	// hup runs on SIGHUP; nil leaves SIGHUP's default.
	hup func()
	// stopWork ends the work still running once the listener is closed,
	// within the drain deadline (serve: the registry cancels GPU jobs).
	stopWork func(ctx context.Context) error
	// started is logged with "listening".
	started []any
}

// serve answers srv's API on --addr (and /metrics on --metrics-addr) until
// ctx ends, then drains: it stops accepting, lets in-flight requests finish
// within --drain-timeout, and cancels what is left.
func (f *apiFlags) serve(ctx context.Context, srv *server.Server, logger *slog.Logger, getenv env, hooks serveHooks) error {
	rawLn, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	ln, err := f.net.listen(rawLn)
	if err != nil {
		rawLn.Close()
		return err
	}
	if f.net.metricsAddr != "" {
		mln, err := net.Listen("tcp", f.net.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		metricsSrv := f.net.httpServer(srv.MetricsHandler(), logger)
		go func() {
			if err := metricsSrv.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics listener", "err", err)
			}
		}()
		defer metricsSrv.Close()
	}
	// inflight lets shutdown wait for every handler before the key store
	// (closed by the caller's defers) goes: a handler still metering must
	// finish.
	var inflight sync.WaitGroup
	handler := srv.Handler()
	httpSrv := f.net.httpServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		handler.ServeHTTP(w, r)
	}), logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("listening", append([]any{"addr", ln.Addr().String()}, hooks.started...)...)
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	if err := waitForStop(ctx, serveErr, hooks.hup); err != nil {
		return err
	}

	logger.Info("shutting down", "drain", f.drain)
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "STOPPING=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	shutErr := httpSrv.Shutdown(drainCtx)
	// Past the drain timeout this cancels what still runs on the GPU: those
	// requests answer 503 and are metered.
	var stopErr error
	if hooks.stopWork != nil {
		stopErr = hooks.stopWork(drainCtx)
	}
	if errors.Is(shutErr, context.DeadlineExceeded) {
		logger.Warn("drain timeout passed; cancelling in-flight requests")
		shutErr = httpSrv.Close()
	}
	inflight.Wait()
	return errors.Join(shutErr, stopErr)
}

// waitForStop returns nil when ctx ends, the listener's error if it fails
// first, and runs hup on each SIGHUP meanwhile.
func waitForStop(ctx context.Context, serveErr <-chan error, hup func()) error {
	var hups chan os.Signal
	if hup != nil {
		hups = make(chan os.Signal, 1)
		signal.Notify(hups, syscall.SIGHUP)
		defer signal.Stop(hups)
	}
	for {
		select {
		case <-hups:
			hup()
		case err := <-serveErr:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}
