package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// slowRunner is a real registry whose steps take at least delay: long
// enough to act mid-job. started is closed at the first step.
type slowRunner struct {
	*models.Registry
	delay   time.Duration
	once    sync.Once
	started chan struct{}
}

func slow(r *models.Registry, delay time.Duration) *slowRunner {
	return &slowRunner{Registry: r, delay: delay, started: make(chan struct{})}
}

func (s *slowRunner) Generate(ctx context.Context, id string, req spec.Request) (spec.Result, error) {
	inner := req.Progress
	req.Progress = func(step, total int) {
		s.once.Do(func() { close(s.started) })
		if inner != nil {
			inner(step, total)
		}
		time.Sleep(s.delay)
	}
	return s.Registry.Generate(ctx, id, req)
}

// fakeAdvert declares model's queue and advertises it for a worker that
// never pulls: jobs stay queued, as behind a busy GPU.
func fakeAdvert(t *testing.T, n *natsServer, model string, q QueueConfig) {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(n.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	q.fill()
	if _, _, err := ensureQueue(ctx, js, model, q); err != nil {
		t.Fatal(err)
	}
	kv, err := ensureWorkers(ctx, js, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(advert{V: wireVersion, Worker: "idle", TTLms: 60000, Models: []models.Info{{ID: model}}})
	if _, err := kv.Put(ctx, "idle", data); err != nil {
		t.Fatal(err)
	}
}

// withdraw deletes a worker's advert, as a stopping worker does.
func withdraw(t *testing.T, n *natsServer, worker string) {
	t.Helper()
	js, err := jetstream.New(n.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), worker); err != nil {
		t.Fatal(err)
	}
}

func streamMsgs(t *testing.T, n *natsServer, model string) uint64 {
	t.Helper()
	js, err := jetstream.New(n.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), streamName(model))
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

func TestFullQueueIsRefusedWith429Hint(t *testing.T) {
	n := startNATS(t)
	fakeAdvert(t, n, "m", QueueConfig{MaxQueue: 2})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "m"))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); g.Generate(ctx, "m", spec.Request{Prompt: "x"}) }()
	}
	waitFor(t, "two queued jobs", func() bool { return streamMsgs(t, n, "m") == 2 })
	start := time.Now()
	_, err := g.Generate(context.Background(), "m", spec.Request{Prompt: "x"})
	var full *models.QueueFullError
	if !errors.Is(err, models.ErrQueueFull) || !errors.As(err, &full) {
		t.Fatalf("err = %v, want a QueueFullError", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusal took %v", time.Since(start))
	}
	// Clients that leave take their jobs out of the queue.
	cancel()
	wg.Wait()
	waitFor(t, "the abandoned jobs to go", func() bool { return streamMsgs(t, n, "m") == 0 })
}

func TestClientThatLeavesCancelsTheRunningJobWithinAStep(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	run := slow(registry(t, dir), 30*time.Millisecond)
	w, wnc, _ := startWorker(t, n, run, WorkerOptions{ID: "w1"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))

	// Watch every step the worker reports, independently of the gateway.
	var last atomic.Int32
	sub, err := wnc.Subscribe("sdgate.progress.*", func(m *nats.Msg) {
		if p, err := decodeProgress(m.Data); err == nil {
			last.Store(int32(p.Step))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	const cancelAt = 3
	var atCancel atomic.Int32
	_, err = g.Generate(ctx, "tiny", spec.Request{Prompt: "x", Steps: 100, Progress: func(step, total int) {
		if step == cancelAt {
			atCancel.Store(int32(step))
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	waitFor(t, "the worker to cancel", func() bool { return w.Stats().Cancelled == 1 })
	time.Sleep(100 * time.Millisecond) // any straggling progress lands
	if got := last.Load(); got > cancelAt+1 {
		t.Errorf("worker ran to step %d after a cancel at step %d", got, cancelAt)
	}
}

func TestKilledWorkersJobIsRedeliveredWithIdenticalPixels(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	first := slow(registry(t, dir), 50*time.Millisecond)
	_, nc1, _ := startWorker(t, n, first, WorkerOptions{ID: "doomed"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))

	req := spec.Request{Prompt: "survive", N: 2, Steps: 8} // no seed: the gateway fixes one
	type outcome struct {
		res spec.Result
		err error
	}
	out := make(chan outcome, 1)
	go func() {
		res, err := g.Generate(context.Background(), "tiny", req)
		out <- outcome{res, err}
	}()
	<-first.started
	nc1.Close() // the worker dies mid-job: no ack, no result, no withdrawal
	second, _, _ := startWorker(t, n, registry(t, dir), WorkerOptions{ID: "rescuer"})

	var o outcome
	select {
	case o = <-out:
	case <-time.After(time.Minute): // a liveness bound, generous for a loaded -race run
		t.Fatal("no result after the worker died")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	// The worker counts the job after the gateway has it.
	waitFor(t, "the rescuer to count the job", func() bool { return second.Stats().Jobs == 1 })
	if s := second.Stats(); s.Jobs != 1 || s.Redelivered != 1 {
		t.Errorf("rescuer stats %+v, want one redelivered job", s)
	}
	req.Seed, req.HasSeed = o.res.Images[0].Seed, true
	want, err := registry(t, dir).Generate(context.Background(), "tiny", req)
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, o.res, want)
}

func TestQueuedJobsSurviveANATSRestart(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	fakeAdvert(t, n, "tiny", QueueConfig{AckWait: time.Second})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))

	out := make(chan error, 1)
	var res spec.Result
	go func() {
		var err error
		res, err = g.Generate(context.Background(), "tiny", spec.Request{Prompt: "persist", Seed: 5, HasSeed: true})
		out <- err
	}()
	waitFor(t, "the queued job", func() bool { return streamMsgs(t, n, "tiny") == 1 })
	n.restart()
	if got := streamMsgs(t, n, "tiny"); got != 1 {
		t.Fatalf("after the restart the stream holds %d jobs, want 1", got)
	}
	startWorker(t, n, registry(t, dir), WorkerOptions{ID: "late"})
	select {
	case err := <-out:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a liveness bound, generous for a loaded -race run
		t.Fatal("the queued job never finished")
	}
	// The gateway's advert watcher lived through the restart too.
	waitFor(t, "the late worker's advert", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		_, ok := g.workers["late"]
		return ok
	})
	want, err := registry(t, dir).Generate(context.Background(), "tiny", spec.Request{Prompt: "persist", Seed: 5, HasSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, res, want)
}

// A worker told to stop hands its running job back at once (nak), so
// another worker finishes it well before the ack deadline would.
func TestStoppingWorkerHandsItsJobBack(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	first := slow(registry(t, dir), 50*time.Millisecond)
	q := QueueConfig{AckWait: 30 * time.Second}
	_, _, stop := startWorker(t, n, first, WorkerOptions{ID: "leaving", Queue: q})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))

	out := make(chan error, 1)
	go func() {
		_, err := g.Generate(context.Background(), "tiny", spec.Request{Prompt: "handed back", Seed: 1, HasSeed: true, Steps: 8})
		out <- err
	}()
	<-first.started
	start := time.Now()
	stop()
	second, _, _ := startWorker(t, n, registry(t, dir), WorkerOptions{ID: "next", Queue: q})
	select {
	case err := <-out:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handed-back job did not finish before half the ack deadline")
	}
	waitFor(t, "the next worker to count the job", func() bool { return second.Stats().Jobs == 1 })
	if s := second.Stats(); s.Jobs != 1 || s.Redelivered != 1 {
		t.Errorf("next worker's stats %+v, want the redelivered job", s)
	}
	t.Logf("handed over and finished in %v (ack deadline %v)", time.Since(start).Round(time.Millisecond), q.AckWait)
}

// Losing a gateway loses only its own open requests: another gateway
// keeps serving from the same workers.
func TestLosingAGatewayLeavesTheOthersServing(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	run := slow(registry(t, dir), 20*time.Millisecond)
	startWorker(t, n, run, WorkerOptions{ID: "w"})
	nc1 := n.connect(t)
	g1, err := NewGateway(context.Background(), nc1, GatewayOptions{ResultPoll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Close()
	g2 := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g1, "tiny"))
	waitFor(t, "the advert", served(g2, "tiny"))

	lost := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := g1.Generate(ctx, "tiny", spec.Request{Prompt: "orphan", Steps: 8})
		lost <- err
	}()
	<-run.started
	nc1.Close() // the gateway's process dies
	if err := <-lost; err == nil {
		t.Error("a request on the dead gateway succeeded")
	}
	for i := range 2 {
		if _, err := g2.Generate(context.Background(), "tiny", spec.Request{Prompt: "still here", Steps: 2, Seed: uint64(i), HasSeed: true}); err != nil {
			t.Fatalf("the surviving gateway: %v", err)
		}
	}
}

// A request's deadline ends the job on the worker too.
func TestDeadlineEndsTheJobOnTheWorker(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	w, _, _ := startWorker(t, n, slow(registry(t, dir), 50*time.Millisecond), WorkerOptions{ID: "w"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := g.Generate(ctx, "tiny", spec.Request{Prompt: "too long", Steps: 100})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the deadline of 600ms answered after %v", took)
	}
	waitFor(t, "the worker to stop the job", func() bool { s := w.Stats(); return s.Cancelled+s.Failed == 1 })
}
