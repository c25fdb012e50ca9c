package models

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// gate is a job that holds the worker until released.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) job(ctx context.Context) error {
	close(g.started)
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// occupy starts a gate job and waits until the worker runs it.
func occupy(t *testing.T, q *Queue) (g *gate, done <-chan error) {
	t.Helper()
	g = newGate()
	ch := make(chan error, 1)
	go func() { ch <- q.Do(context.Background(), g.job) }()
	select {
	case <-g.started:
	case <-time.After(5 * time.Second):
		t.Fatal("gate job never started")
	}
	return g, ch
}

// waitDepth polls until d jobs wait, so tests enqueue in a known order.
func waitDepth(t *testing.T, q *Queue, d int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.Depth() != d {
		if time.Now().After(deadline) {
			t.Fatalf("depth %d, want %d", q.Depth(), d)
		}
		time.Sleep(time.Millisecond)
	}
}

func closeQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestQueueRunsInFIFOOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(8, QueueOptions{})
	defer closeQueue(t, q)
	g, gateDone := occupy(t, q)

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := q.Do(context.Background(), func(context.Context) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
		}()
		waitDepth(t, q, i+1)
	}
	close(g.release)
	wg.Wait()
	if err := <-gateDone; err != nil {
		t.Fatalf("gate: %v", err)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("order %v, want 0..4", order)
		}
	}
	if len(order) != 5 {
		t.Fatalf("ran %d jobs, want 5", len(order))
	}
}

func TestQueueFullAnswersAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, size := range []int{0, 1, 3} {
		t.Run("size", func(t *testing.T) {
			q := NewQueue(size, QueueOptions{})
			defer closeQueue(t, q)
			g, gateDone := occupy(t, q)
			var wg sync.WaitGroup
			for i := range size {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := q.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
						t.Errorf("waiting job: %v", err)
					}
				}()
				waitDepth(t, q, i+1)
			}
			start := time.Now()
			err := q.Do(context.Background(), func(context.Context) error {
				t.Error("a refused job ran")
				return nil
			})
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("refusal took %v, want at once", took)
			}
			var full *QueueFullError
			if !errors.Is(err, ErrQueueFull) || !errors.As(err, &full) {
				t.Fatalf("got %v, want QueueFullError", err)
			}
			if full.Waiting != size {
				t.Errorf("Waiting = %d, want %d", full.Waiting, size)
			}
			if full.RetryAfter != 0 {
				t.Errorf("RetryAfter = %v before any job finished, want 0", full.RetryAfter)
			}
			close(g.release)
			wg.Wait()
			<-gateDone
		})
	}
}

func TestQueueRetryAfterFollowsJobTimes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(0, QueueOptions{MaxRetryAfter: 30 * time.Second})
	defer closeQueue(t, q)
	if err := q.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	g, gateDone := occupy(t, q)
	var full *QueueFullError
	if err := q.Do(context.Background(), g.job); !errors.As(err, &full) {
		t.Fatalf("got %v, want QueueFullError", err)
	}
	if full.RetryAfter < time.Second || full.RetryAfter > 30*time.Second {
		t.Errorf("RetryAfter = %v, want within [1s, 30s]", full.RetryAfter)
	}
	close(g.release)
	<-gateDone
}

func TestQueueSkipsJobsWhoseContextEnded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name    string
		opts    QueueOptions
		ctx     func() (context.Context, context.CancelFunc)
		end     func(cancel context.CancelFunc) // ends the wait
		wantIs  []error
		wantNot error
	}{
		{
			name:   "cancelled",
			ctx:    func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end:    func(cancel context.CancelFunc) { cancel() },
			wantIs: []error{context.Canceled}, wantNot: ErrQueueTimeout,
		},
		{
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			},
			end:    func(context.CancelFunc) {},
			wantIs: []error{ErrQueueTimeout, context.DeadlineExceeded},
		},
		{
			name:   "max wait",
			opts:   QueueOptions{MaxWait: 20 * time.Millisecond},
			ctx:    func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end:    func(context.CancelFunc) {},
			wantIs: []error{ErrQueueTimeout},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(4, tt.opts)
			defer closeQueue(t, q)
			g, gateDone := occupy(t, q)
			ctx, cancel := tt.ctx()
			defer cancel()
			var ran atomic.Bool
			errc := make(chan error, 1)
			go func() {
				errc <- q.Do(ctx, func(context.Context) error { ran.Store(true); return nil })
			}()
			waitDepth(t, q, 1)
			tt.end(cancel)
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatal("Do did not return while the worker was busy")
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("err %v is not %v", err, want)
				}
			}
			if tt.wantNot != nil && errors.Is(err, tt.wantNot) {
				t.Errorf("err %v should not be %v", err, tt.wantNot)
			}
			if q.Depth() != 0 {
				t.Errorf("depth %d after the skip, want 0", q.Depth())
			}
			close(g.release)
			<-gateDone
			// One more job proves the skipped one never reaches the worker.
			if err := q.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if ran.Load() {
				t.Error("the skipped job ran")
			}
		})
	}
}

func TestQueueCancellationStopsRunningJob(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(1, QueueOptions{})
	defer closeQueue(t, q)
	ctx, cancel := context.WithCancel(context.Background())
	g := newGate()
	errc := make(chan error, 1)
	go func() { errc <- q.Do(ctx, g.job) }()
	<-g.started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("running job was not cancelled")
	}
	if q.Busy() {
		t.Error("worker still busy after Do returned")
	}
	start := time.Now()
	if err := q.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("next job waited %v: the worker was not freed", took)
	}
}

func TestQueueJobErrorsAndPanics(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(1, QueueOptions{})
	defer closeQueue(t, q)
	boom := errors.New("boom")
	if err := q.Do(context.Background(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("got %v, want the job's error", err)
	}
	if err := q.Do(context.Background(), func(context.Context) error { panic("bad job") }); err == nil {
		t.Error("a panicking job returned nil")
	}
	if err := q.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("worker broken after a panic: %v", err)
	}
}

func TestQueueCloseDrains(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(3, QueueOptions{}) // full once 3 wait: probes below never queue
	g, gateDone := occupy(t, q)
	var completed atomic.Int32
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Do(context.Background(), func(context.Context) error { completed.Add(1); return nil }); err != nil {
				t.Errorf("queued job: %v", err)
			}
		}()
		waitDepth(t, q, i+1)
	}
	closed := make(chan error, 1)
	go func() { closed <- q.Close(context.Background()) }()
	// Closing refuses new work at once but keeps what is queued.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := q.Do(context.Background(), func(context.Context) error { return nil })
		if errors.Is(err, ErrClosed) {
			break
		}
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("probe before Close: %v, want ErrQueueFull", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Do during Close: %v, want ErrClosed", err)
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	<-gateDone
	if completed.Load() != 3 {
		t.Errorf("%d queued jobs completed, want 3", completed.Load())
	}
}

func TestQueueCloseCancelsAfterDrainTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	q := NewQueue(4, QueueOptions{})
	_, gateDone := occupy(t, q) // never released: only cancellation ends it
	queued := make(chan error, 1)
	go func() { queued <- q.Do(context.Background(), func(context.Context) error { return nil }) }()
	waitDepth(t, q, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want DeadlineExceeded", err)
	}
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Errorf("queued job: %v, want ErrClosed", err)
	}
	if err := <-gateDone; !errors.Is(err, context.Canceled) {
		t.Errorf("running job: %v, want it cancelled", err)
	}
}
