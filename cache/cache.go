package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrComputePanic: the compute function panicked; the panic became this
// error for every caller waiting on it.
var ErrComputePanic = errors.New("cache compute panicked")

// Options configure a Cache; the zero value of each field is its default.
type Options struct {
	// PromptCaching makes requests without a seed cacheable too: they are
	// looked up by their other parameters, and on a miss the image made
	// with a freshly drawn seed is stored, so the next identical seedless
	// request gets the same images and seeds. Off (the default), a request
	// without a seed always computes.
	PromptCaching bool
	// Logger receives store errors (default: discard).
	Logger *slog.Logger

	// Coalescing across instances, when the store is a FlightLock (Redis):
	// identical requests on different gateways run once.
	// LocalFlightsOnly turns it off; ClaimTTL (default 15s, renewed while
	// the leader computes), RemoteWait (default 2m: a follower's longest
	// wait before computing itself) and RemotePoll (default 100ms) tune it.
	LocalFlightsOnly bool
	ClaimTTL         time.Duration
	RemoteWait       time.Duration
	RemotePoll       time.Duration
}

// ComputeFunc produces an entry on a miss. Its ctx is detached from any one
// caller: it ends only when every caller waiting for the result has gone.
type ComputeFunc func(ctx context.Context) (Entry, error)

// Cache puts a Store in front of an expensive computation: hits come from
// the store, identical requests in flight run once, errors are never
// stored. A nil *Cache is valid and caches nothing.
type Cache struct {
	store  Store
	opts   Options
	log    *slog.Logger
	remote *remote // nil: flights are per process

	mu      sync.Mutex
	flights map[Key]*flight

	hits, misses, coalesced, bypassed atomic.Int64
	failures, abandoned, storeErrors  atomic.Int64
	remoteWaits, remoteCoalesced      atomic.Int64
	saved                             atomic.Int64 // nanoseconds
	lastStoreLog                      atomic.Int64 // unix ns of the last store error logged
}

// flight is one computation shared by every caller with the same key.
type flight struct {
	done    chan struct{} // closed when entry, err and fromStore are set
	cancel  context.CancelFunc
	waiters int // callers still waiting; guarded by Cache.mu

	entry     Entry
	err       error
	fromStore bool // the flight found the entry stored and computed nothing
	remote    bool // another instance computed it while this flight waited
}

// New puts a cache with opts in front of store.
func New(store Store, opts Options) (*Cache, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrBadOptions)
	}
	if opts.ClaimTTL < 0 || opts.ClaimTTL > 0 && opts.ClaimTTL < 3*time.Millisecond {
		return nil, fmt.Errorf("%w: claim TTL %v: want 3ms or more", ErrBadOptions, opts.ClaimTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{store: store, opts: opts, log: log, remote: opts.remote(store), flights: map[Key]*flight{}}, nil
}

// Cacheable reports whether a request with p is looked up and stored: one
// with a seed always is (the same seed gives the same pixels); one without
// only under prompt caching.
func (c *Cache) Cacheable(p Params) bool {
	return c != nil && (p.HasSeed || c.opts.PromptCaching)
}

// Do returns the entry for p: from the store, from an identical request in
// flight, or from compute, whose result is stored. When p is not Cacheable
// compute simply runs on ctx. A caller whose ctx ends while waiting returns
// ctx's error at once; the computation goes on for the others and is
// cancelled when nobody waits any more.
func (c *Cache) Do(ctx context.Context, p Params, compute ComputeFunc) (Entry, Outcome, error) {
	if !c.Cacheable(p) {
		if c != nil {
			c.bypassed.Add(1)
		}
		e, err := compute(ctx)
		return e, Bypass, err
	}
	key := KeyOf(p)
	if e, ok := c.get(ctx, key); ok {
		c.hit(e)
		return e, Hit, nil
	}
	f, leader := c.join(ctx, key, p, compute)
	select {
	case <-f.done:
	case <-ctx.Done():
		c.leave(key, f)
		if leader {
			return Entry{}, Miss, ctx.Err()
		}
		return Entry{}, Coalesced, ctx.Err()
	}
	switch {
	case f.err != nil:
		if leader {
			return Entry{}, Miss, f.err
		}
		return Entry{}, Coalesced, f.err
	case f.remote:
		c.coalesced.Add(1)
		c.saved.Add(int64(f.entry.Elapsed))
		return f.entry, Coalesced, nil
	case f.fromStore:
		c.hit(f.entry)
		return f.entry, Hit, nil
	case leader:
		return f.entry, Miss, nil
	}
	c.coalesced.Add(1)
	c.saved.Add(int64(f.entry.Elapsed))
	return f.entry, Coalesced, nil
}

// Lookup is Do's first step alone: the stored entry for p, whose key is
// key (KeyOf(p), which a caller that sees p again can keep), counted as a
// hit; or false (nothing counted) when p is not stored or not Cacheable.
// A caller that builds its compute only on a miss (and then calls Do)
// spares a hit that allocation. Do reads the store again, and reports a
// store error that Lookup passed over, once.
func (c *Cache) Lookup(ctx context.Context, p Params, key Key) (Entry, bool) {
	if !c.Cacheable(p) {
		return Entry{}, false
	}
	e, ok, err := c.store.Get(ctx, key)
	if err != nil || !ok {
		return Entry{}, false
	}
	c.hit(e)
	return e, true
}

func (c *Cache) hit(e Entry) {
	c.hits.Add(1)
	c.saved.Add(int64(e.Elapsed))
}

// join adds the caller to the flight for key, starting one (the caller is
// then its leader) when none is running.
func (c *Cache) join(ctx context.Context, key Key, p Params, compute ComputeFunc) (*flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		f.waiters++
		return f, false
	}
	// The flight keeps ctx's values (request id, logger) but not its
	// deadline or cancellation: those belong to one caller.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight{done: make(chan struct{}), cancel: cancel, waiters: 1}
	c.flights[key] = f
	go c.run(fctx, key, p, f, compute)
	return f, true
}

// leave drops a caller that stopped waiting; the last one out cancels the
// computation and unlists it, so a later caller starts afresh.
func (c *Cache) leave(key Key, f *flight) {
	c.abandoned.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	f.cancel()
}

// run is a flight's goroutine.
func (c *Cache) run(ctx context.Context, key Key, p Params, f *flight, compute ComputeFunc) {
	defer f.cancel()
	// Look again: a flight that finished between the caller's lookup and
	// its join has stored the entry by now (flights store before they
	// unlist themselves).
	release := func() {}
	if e, ok := c.get(ctx, key); ok {
		f.entry, f.fromStore = e, true
	} else if c.remote != nil {
		e, found, rel, err := c.lead(ctx, key)
		switch {
		case err != nil:
			f.err = err
		case found:
			f.entry, f.fromStore, f.remote = e, true, true
			c.remoteCoalesced.Add(1)
		default:
			release = rel
		}
	}
	if !f.fromStore && f.err == nil {
		c.misses.Add(1)
		f.entry, f.err = safeCompute(ctx, compute)
		if f.err != nil {
			c.failures.Add(1)
		} else {
			c.add(ctx, key, f.entry)
			if !p.HasSeed && len(f.entry.Seeds) > 0 {
				// The images are what their seed gives: a later request
				// naming that seed is a hit too.
				seeded := p
				seeded.Seed, seeded.HasSeed = f.entry.Seeds[0], true
				c.add(ctx, KeyOf(seeded), f.entry)
			}
		}
	}
	release() // after the entry is stored: followers see it or the claim, never neither
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	close(f.done)
}

// safeCompute turns a panic into an error, since no caller's goroutine
// (and so no HTTP recovery middleware) is above a flight's.
func safeCompute(ctx context.Context, compute ComputeFunc) (e Entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = Entry{}, fmt.Errorf("%w: %v\n%s", ErrComputePanic, r, debug.Stack())
		}
	}()
	return compute(ctx)
}

// get reads the store; a store error counts, is logged and reads as a miss.
func (c *Cache) get(ctx context.Context, key Key) (Entry, bool) {
	e, ok, err := c.store.Get(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return Entry{}, false // the caller left; not the store's fault
		}
		c.storeError(ctx, "get", key, err)
		return Entry{}, false
	}
	return e, ok
}

// add writes the store; a failure costs a later hit, never this response.
func (c *Cache) add(ctx context.Context, key Key, e Entry) {
	if err := c.store.Add(ctx, key, e); err != nil {
		c.storeError(ctx, "add", key, err)
	}
}

// storeErrorLogEvery spaces the log lines of a store that keeps failing
// (Redis down): every request would otherwise log one.
const storeErrorLogEvery = 10 * time.Second

// storeError counts a failed store call and logs it, at most once per
// storeErrorLogEvery.
func (c *Cache) storeError(ctx context.Context, op string, key Key, err error) {
	total := c.storeErrors.Add(1)
	now := time.Now().UnixNano()
	last := c.lastStoreLog.Load()
	if last != 0 && now-last < int64(storeErrorLogEvery) || !c.lastStoreLog.CompareAndSwap(last, now) {
		return
	}
	c.log.WarnContext(ctx, "cache store failed; serving without it",
		"op", op, "key", key.String(), "err", err, "store_errors_total", total)
}

// Stats are a Cache's counters since New and its store's state, for
// /metrics. Counters only grow.
type Stats struct {
	Hits        int64 // served from the store
	Misses      int64 // computations run (once per flight)
	Coalesced   int64 // callers served by another caller's computation
	Bypassed    int64 // not cacheable: computed without lookup
	Failures    int64 // computations that returned an error (not stored)
	Abandoned   int64 // callers whose context ended while waiting
	StoreErrors int64 // store reads and writes that failed
	// RemoteWaits counts flights that waited on another instance's
	// claim; RemoteCoalesced those that got its entry (also in Coalesced
	// for each caller).
	RemoteWaits, RemoteCoalesced int64
	// Saved adds up Entry.Elapsed over hits and coalesced callers: the
	// compute time the cache spared.
	Saved time.Duration
	// InFlight computations and the callers waiting on them right now.
	InFlight, Waiting int
	Store             StoreStats
}

// Stats returns the current figures; a nil Cache reports zeros.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	s := Stats{
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Coalesced:   c.coalesced.Load(),
		Bypassed:    c.bypassed.Load(),
		Failures:    c.failures.Load(),
		Abandoned:   c.abandoned.Load(),
		StoreErrors: c.storeErrors.Load(),
		RemoteWaits: c.remoteWaits.Load(),

		RemoteCoalesced: c.remoteCoalesced.Load(),
		Saved:           time.Duration(c.saved.Load()),
		Store:           c.store.Stats(),
	}
	c.mu.Lock()
	s.InFlight = len(c.flights)
	for _, f := range c.flights {
		s.Waiting += f.waiters
	}
	c.mu.Unlock()
	return s
}
