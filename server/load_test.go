package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// queuedServer serves a fake generator whose jobs go through a real
// models.Queue of the given size.
func queuedServer(t testing.TB, size int, delay time.Duration, opts ...func(*Options)) (*httptest.Server, *fakeGenerator, *models.Queue) {
	t.Helper()
	q := models.NewQueue(size, models.QueueOptions{})
	gen := newFakeGenerator()
	gen.queue = q
	gen.setDelay(delay)
	ts := startServer(t, gen, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Close(ctx); err != nil {
			t.Errorf("queue close: %v", err)
		}
	})
	return ts, gen, q
}

// TestLoadOverfilledQueue sends a bounded burst over loopback at a queue
// that holds a few: the rest must get 429 with Retry-After at once, nothing
// may fail with 5xx, and every accepted request must complete.
func TestLoadOverfilledQueue(t *testing.T) {
	const (
		size     = 3
		requests = 30
	)
	ts, gen, _ := queuedServer(t, size, 150*time.Millisecond)
	client := ts.Client()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			began := time.Now()
			r := postJSON(t, client, ts.URL, `{"prompt":"load","model":"sd-tiny","size":"64x64"}`)
			took := time.Since(began)
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
			switch r.status {
			case http.StatusOK:
				var resp compat.ImagesResponse
				if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Data) != 1 || resp.Data[0].B64JSON == "" {
					t.Errorf("accepted request answered %.200s", r.body)
				}
			case http.StatusTooManyRequests:
				if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
					t.Errorf("429 with Retry-After %q", r.header.Get("Retry-After"))
				}
				if r.header.Get("X-Should-Retry") != "true" {
					t.Error("429 without X-Should-Retry: true")
				}
				if took > time.Second {
					t.Errorf("429 took %v: a full queue must answer at once", took)
				}
			default:
				t.Errorf("status %d: %.200s", r.status, r.body)
			}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Error("no request was refused: the queue never filled")
	}
	if statuses[http.StatusOK] < size+1 {
		t.Errorf("%d accepted, want at least %d (running + queued)", statuses[http.StatusOK], size+1)
	}
	if got := int(gen.runs.Load()); got != statuses[http.StatusOK] {
		t.Errorf("%d jobs ran for %d accepted requests", got, statuses[http.StatusOK])
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sendCancellable posts a generation that the returned cancel abandons.
func sendCancellable(t *testing.T, ts *httptest.Server) (cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/images/generations",
		strings.NewReader(`{"prompt":"slow","model":"sd-tiny"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	ch := make(chan error, 1)
	go func() {
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		ch <- err
	}()
	return cancelCtx, ch
}

func TestCancellationFreesWorker(t *testing.T) {
	ts, gen, q := queuedServer(t, 2, time.Hour)
	cancelRunning, runningDone := sendCancellable(t, ts)
	waitFor(t, "the first job to run", q.Busy)
	cancelQueued, queuedDone := sendCancellable(t, ts)
	waitFor(t, "the second job to queue", func() bool { return q.Depth() == 1 })

	// A client that leaves while queued never reaches the GPU.
	cancelQueued()
	if err := <-queuedDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued client: %v", err)
	}
	waitFor(t, "the queued job to be dropped", func() bool { return q.Depth() == 0 })

	// A client that leaves while running stops its job and frees the worker.
	cancelRunning()
	if err := <-runningDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("running client: %v", err)
	}
	waitFor(t, "the worker to be free", func() bool { return !q.Busy() })
	if gen.cancelled.Load() != 1 || gen.runs.Load() != 1 {
		t.Errorf("cancelled %d runs %d, want 1 and 1", gen.cancelled.Load(), gen.runs.Load())
	}

	gen.setDelay(0)
	start := time.Now()
	if r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"next","model":"sd-tiny"}`); r.status != 200 {
		t.Fatalf("next request: %d %s", r.status, r.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("next request took %v", took)
	}
}
