package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestCache(t *testing.T, opts Options) *Cache {
	t.Helper()
	m, err := NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counter is a compute function that counts its runs and answers an entry
// whose seed is the run number.
type counter struct{ runs atomic.Int64 }

func (c *counter) compute(context.Context) (Entry, error) {
	n := c.runs.Add(1)
	return Entry{Images: [][]byte{fmt.Appendf(nil, "image %d", n)}, Seeds: []uint64{uint64(1000 + n)},
		ContentType: "image/png", Elapsed: time.Second}, nil
}

func TestNewRejectsNilStore(t *testing.T) {
	if _, err := New(nil, Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("New(nil) err = %v, want ErrBadOptions", err)
	}
}

func TestDoPolicy(t *testing.T) {
	seeded := Params{Prompt: "p", Seed: 5, HasSeed: true}
	seedless := Params{Prompt: "p"}
	tests := []struct {
		name          string
		promptCaching bool
		p             Params
		want          []Outcome // outcomes of consecutive identical calls
		runs          int64
	}{
		{"seeded: miss then hits", false, seeded, []Outcome{Miss, Hit, Hit}, 1},
		{"seedless: always computes", false, seedless, []Outcome{Bypass, Bypass, Bypass}, 3},
		{"seedless with prompt caching: miss then hits", true, seedless, []Outcome{Miss, Hit, Hit}, 1},
		{"seeded with prompt caching", true, seeded, []Outcome{Miss, Hit}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Options{PromptCaching: tt.promptCaching})
			var cnt counter
			var first Entry
			for i, want := range tt.want {
				e, got, err := c.Do(context.Background(), tt.p, cnt.compute)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("call %d: outcome %v, want %v", i, got, want)
				}
				if i == 0 {
					first = e
				} else if want == Hit && string(e.Images[0]) != string(first.Images[0]) {
					t.Errorf("call %d: hit returned %q, want %q", i, e.Images[0], first.Images[0])
				}
			}
			if cnt.runs.Load() != tt.runs {
				t.Errorf("computed %d times, want %d", cnt.runs.Load(), tt.runs)
			}
		})
	}
}

// TestPromptCachingStoresUnderTheSeed: a seedless result is what its seed
// gives, so asking again with that seed is a hit.
func TestPromptCachingStoresUnderTheSeed(t *testing.T) {
	c := newTestCache(t, Options{PromptCaching: true})
	var cnt counter
	p := Params{Prompt: "p"}
	e, _, err := c.Do(context.Background(), p, cnt.compute)
	if err != nil {
		t.Fatal(err)
	}
	p.Seed, p.HasSeed = e.Seeds[0], true
	got, outcome, err := c.Do(context.Background(), p, cnt.compute)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != Hit || string(got.Images[0]) != string(e.Images[0]) {
		t.Errorf("seeded repeat: %v %q, want hit %q", outcome, got.Images[0], e.Images[0])
	}
	p.Seed++
	if _, outcome, _ := c.Do(context.Background(), p, cnt.compute); outcome != Miss {
		t.Errorf("another seed: %v, want miss", outcome)
	}
}

// TestLookup: Lookup finds what Do stored and counts it as Do counts a
// hit; a miss, a seedless request and a nil cache find nothing and count
// nothing.
func TestLookup(t *testing.T) {
	ctx := context.Background()
	c := newTestCache(t, Options{})
	var cnt counter
	p := Params{Prompt: "p", Seed: 5, HasSeed: true}
	if _, ok := c.Lookup(ctx, p, KeyOf(p)); ok {
		t.Fatal("found an entry before any was stored")
	}
	stored, _, err := c.Do(ctx, p, cnt.compute)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := c.Lookup(ctx, p, KeyOf(p))
	if !ok || string(e.Images[0]) != string(stored.Images[0]) {
		t.Fatalf("lookup after Do: %v %q, want %q", ok, e.Images, stored.Images[0])
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Errorf("stats %+v, want 1 hit (the lookup) and 1 miss (the Do)", s)
	}
	if _, ok := c.Lookup(ctx, Params{Prompt: "p"}, KeyOf(Params{Prompt: "p"})); ok {
		t.Error("a seedless request found an entry without prompt caching")
	}
	var none *Cache
	if _, ok := none.Lookup(ctx, p, KeyOf(p)); ok {
		t.Error("a nil cache found an entry")
	}
}

func TestNilCacheBypasses(t *testing.T) {
	var c *Cache
	var cnt counter
	for range 2 {
		if _, outcome, err := c.Do(context.Background(), Params{HasSeed: true}, cnt.compute); err != nil || outcome != Bypass {
			t.Errorf("nil cache: %v %v, want bypass", outcome, err)
		}
	}
	if cnt.runs.Load() != 2 {
		t.Errorf("computed %d times, want 2", cnt.runs.Load())
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("nil cache stats %+v", s)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := newTestCache(t, Options{})
	p := Params{Prompt: "p", HasSeed: true}
	boom := errors.New("gpu on fire")
	if _, outcome, err := c.Do(context.Background(), p, func(context.Context) (Entry, error) { return Entry{}, boom }); !errors.Is(err, boom) || outcome != Miss {
		t.Fatalf("failing compute: %v %v, want miss and the error", outcome, err)
	}
	var cnt counter
	if _, outcome, err := c.Do(context.Background(), p, cnt.compute); err != nil || outcome != Miss || cnt.runs.Load() != 1 {
		t.Errorf("after a failure: %v %v runs %d, want a fresh miss", outcome, err, cnt.runs.Load())
	}
	if s := c.Stats(); s.Failures != 1 || s.Misses != 2 || s.Store.Entries != 1 {
		t.Errorf("stats %+v, want 1 failure, 2 misses, 1 entry", s)
	}
}

func TestComputePanicBecomesError(t *testing.T) {
	c := newTestCache(t, Options{})
	_, _, err := c.Do(context.Background(), Params{HasSeed: true}, func(context.Context) (Entry, error) { panic("oops") })
	if !errors.Is(err, ErrComputePanic) {
		t.Errorf("err = %v, want ErrComputePanic", err)
	}
}

// gate is a compute function that blocks until released, reporting when it
// starts and how its context ended.
type gate struct {
	started  chan struct{}
	release  chan struct{}
	runs     atomic.Int64
	ctxErr   chan error
	startOne sync.Once
}

func newGate() *gate {
	return &gate{started: make(chan struct{}), release: make(chan struct{}), ctxErr: make(chan error, 1)}
}

func (g *gate) compute(ctx context.Context) (Entry, error) {
	g.runs.Add(1)
	g.startOne.Do(func() { close(g.started) })
	select {
	case <-g.release:
		return Entry{Images: [][]byte{[]byte("shared")}, Seeds: []uint64{1}, Elapsed: time.Second}, nil
	case <-ctx.Done():
		g.ctxErr <- ctx.Err()
		return Entry{}, ctx.Err()
	}
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type result struct {
	e       Entry
	outcome Outcome
	err     error
}

func TestCoalescing(t *testing.T) {
	const callers = 16
	c := newTestCache(t, Options{})
	g := newGate()
	p := Params{Prompt: "popular", HasSeed: true}

	results := make(chan result, callers)
	for range callers {
		go func() {
			e, o, err := c.Do(context.Background(), p, g.compute)
			results <- result{e, o, err}
		}()
	}
	waitFor(t, "every caller to wait", func() bool { s := c.Stats(); return s.Waiting == callers && s.InFlight == 1 })
	close(g.release)

	counts := map[Outcome]int{}
	for range callers {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if string(r.e.Images[0]) != "shared" {
			t.Errorf("caller got %q", r.e.Images[0])
		}
		counts[r.outcome]++
	}
	if g.runs.Load() != 1 {
		t.Errorf("computed %d times, want 1", g.runs.Load())
	}
	if counts[Miss] != 1 || counts[Coalesced] != callers-1 {
		t.Errorf("outcomes %v, want 1 miss and %d coalesced", counts, callers-1)
	}
	s := c.Stats()
	if s.Misses != 1 || s.Coalesced != callers-1 || s.InFlight != 0 || s.Waiting != 0 || s.Saved != (callers-1)*time.Second {
		t.Errorf("stats %+v", s)
	}
	if _, o, _ := c.Do(context.Background(), p, g.compute); o != Hit {
		t.Errorf("after the flight: %v, want hit", o)
	}
}

// TestCoalescingDistinctKeys: different keys never wait for each other.
func TestCoalescingDistinctKeys(t *testing.T) {
	c := newTestCache(t, Options{})
	var cnt counter
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			p := Params{Prompt: fmt.Sprint("prompt ", i%10), HasSeed: true}
			if _, _, err := c.Do(context.Background(), p, cnt.compute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := cnt.runs.Load(); n != 10 {
		t.Errorf("computed %d times for 10 keys", n)
	}
	if s := c.Stats(); s.Hits+s.Coalesced+s.Misses != 50 || s.Store.Entries != 10 {
		t.Errorf("stats %+v", s)
	}
}

func TestWaiterLeavingDoesNotCancelOthers(t *testing.T) {
	c := newTestCache(t, Options{})
	g := newGate()
	p := Params{Prompt: "p", HasSeed: true}

	// The leader leaves; a second caller stays.
	leaderCtx, leave := context.WithCancel(context.Background())
	leader := make(chan result, 1)
	go func() {
		e, o, err := c.Do(leaderCtx, p, g.compute)
		leader <- result{e, o, err}
	}()
	<-g.started
	stayer := make(chan result, 1)
	go func() {
		e, o, err := c.Do(context.Background(), p, g.compute)
		stayer <- result{e, o, err}
	}()
	waitFor(t, "two waiters", func() bool { return c.Stats().Waiting == 2 })

	leave()
	if r := <-leader; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("leaving caller: %v, want context.Canceled", r.err)
	}
	select {
	case err := <-g.ctxErr:
		t.Fatalf("compute cancelled (%v) while a caller still waits", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(g.release)
	r := <-stayer
	if r.err != nil || r.outcome != Coalesced || string(r.e.Images[0]) != "shared" {
		t.Errorf("staying caller: %v %v %q", r.outcome, r.err, r.e.Images)
	}
	if s := c.Stats(); s.Abandoned != 1 || s.Store.Entries != 1 {
		t.Errorf("stats %+v, want 1 abandoned and the entry stored", s)
	}
}

func TestLastWaiterLeavingCancels(t *testing.T) {
	c := newTestCache(t, Options{})
	g := newGate()
	p := Params{Prompt: "p", HasSeed: true}

	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for _, ctx := range []context.Context{ctx1, ctx2} {
		go func() {
			_, _, err := c.Do(ctx, p, g.compute)
			errs <- err
		}()
	}
	waitFor(t, "two waiters", func() bool { return c.Stats().Waiting == 2 })
	cancel1()
	cancel2()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("caller err = %v, want context.Canceled", err)
		}
	}
	select {
	case err := <-g.ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("compute ctx err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("compute not cancelled after every caller left")
	}
	// A newcomer starts afresh instead of joining the cancelled flight.
	waitFor(t, "the flight to end", func() bool { return c.Stats().InFlight == 0 })
	var cnt counter
	if _, o, err := c.Do(context.Background(), p, cnt.compute); err != nil || o != Miss || cnt.runs.Load() != 1 {
		t.Errorf("newcomer: %v %v runs %d, want a fresh miss", o, err, cnt.runs.Load())
	}
}

// TestFlightKeepsContextValues: the detached context still carries the
// first caller's values (request id, logger).
func TestFlightKeepsContextValues(t *testing.T) {
	type ctxKey struct{}
	c := newTestCache(t, Options{})
	ctx := context.WithValue(context.Background(), ctxKey{}, "req-1")
	var got any
	_, _, err := c.Do(ctx, Params{HasSeed: true}, func(ctx context.Context) (Entry, error) {
		got = ctx.Value(ctxKey{})
		return Entry{}, nil
	})
	if err != nil || got != "req-1" {
		t.Errorf("value %v err %v, want req-1", got, err)
	}
}

// failingStore fails every call.
type failingStore struct{ gets, adds atomic.Int64 }

var errStoreDown = errors.New("store down")

func (s *failingStore) Get(context.Context, Key) (Entry, bool, error) {
	s.gets.Add(1)
	return Entry{}, false, errStoreDown
}

func (s *failingStore) Add(context.Context, Key, Entry) error {
	s.adds.Add(1)
	return errStoreDown
}

func (s *failingStore) Stats() StoreStats { return StoreStats{} }

func TestStoreErrorsDegradeToCompute(t *testing.T) {
	st := &failingStore{}
	var logs bytes.Buffer
	c, err := New(st, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var cnt counter
	for range 2 {
		e, o, err := c.Do(context.Background(), Params{HasSeed: true}, cnt.compute)
		if err != nil || o != Miss || len(e.Images) != 1 {
			t.Fatalf("with a failing store: %v %v %+v, want a computed miss", o, err, e)
		}
	}
	if s := c.Stats(); s.StoreErrors != 6 || s.Misses != 2 { // per call: get, get in flight, add
		t.Errorf("stats %+v, want 6 store errors and 2 misses", s)
	}
	// A store that keeps failing logs once per storeErrorLogEvery, not per call.
	if n := strings.Count(logs.String(), "cache store failed"); n != 1 {
		t.Errorf("%d log lines for 6 store errors, want 1:\n%s", n, logs.String())
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		o      Outcome
		name   string
		header string
		cached bool
	}{
		{Bypass, "bypass", "MISS", false},
		{Miss, "miss", "MISS", false},
		{Hit, "hit", "HIT", true},
		{Coalesced, "coalesced", "HIT", true},
		{Outcome(99), "unknown", "MISS", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.String() != tt.name || tt.o.Header() != tt.header || tt.o.Cached() != tt.cached {
				t.Errorf("%d: %q %q %v", tt.o, tt.o.String(), tt.o.Header(), tt.o.Cached())
			}
		})
	}
}
