package dispatch

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

// natsServer is a real nats-server with JetStream, embedded in the test
// process; its store survives Restart.
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: -1}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, JetStream: true,
		StoreDir: n.dir, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats-server did not start")
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// restart stops the server and starts it again on the same port and store.
func (n *natsServer) restart() {
	n.stop()
	n.start()
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// connect opens a client connection that reconnects for ever.
func (n *natsServer) connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// tinyModels writes one tiny synthetic model, "tiny", and returns the
// models folder (skipping first when there is no ONNX Runtime).
func tinyModels(t testing.TB) string {
	t.Helper()
	ortest.Library(t)
	dir := t.TempDir()
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "tiny"), synth.Options{Preset: "tiny", Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	rtOnce sync.Once
	rt     *sd.Runtime
	rtErr  error
)

// registry is a real models.Registry over the tiny model, on its own
// queue (one per worker, as one per GPU).
func registry(t testing.TB, dir string) *models.Registry {
	t.Helper()
	lib := ortest.Library(t)
	rtOnce.Do(func() { rt, rtErr = sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	r, err := models.NewRegistry(models.RegistryOptions{Open: models.OpenWith(rt.OpenPipeline), Dir: dir, QueueSize: 4, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// startWorker runs a worker on its own connection until the test ends
// or stop is called; stop waits for Run to return.
func startWorker(t testing.TB, n *natsServer, run Runner, opts WorkerOptions) (w *Worker, nc *nats.Conn, stop func()) {
	t.Helper()
	nc = n.connect(t)
	if opts.Queue.AckWait == 0 {
		opts.Queue.AckWait = time.Second
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 200 * time.Millisecond
	}
	if opts.ColdGrace == 0 {
		opts.ColdGrace = 50 * time.Millisecond
	}
	if opts.PollWait == 0 {
		opts.PollWait = 200 * time.Millisecond
	}
	w, err := NewWorker(nc, run, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !nc.IsClosed() {
				t.Errorf("worker %s: %v", w.ID(), err)
			}
		})
	}
	t.Cleanup(stop)
	return w, nc, stop
}

func startGateway(t testing.TB, n *natsServer, opts GatewayOptions) *Gateway {
	t.Helper()
	if opts.ResultPoll == 0 {
		opts.ResultPoll = 200 * time.Millisecond
	}
	g, err := NewGateway(context.Background(), n.connect(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func served(g *Gateway, model string) func() bool {
	return func() bool { _, ok := g.Resolve(model); return ok && g.liveWorkers(model) > 0 }
}
