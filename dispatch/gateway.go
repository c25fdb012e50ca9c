package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/models"
)

// GatewayOptions configure a Gateway; zero values mean the defaults.
type GatewayOptions struct {
	Logger *slog.Logger
	// Names say what model names mean (aliases, OpenAI names, default);
	// the models themselves come from the workers' advertisements.
	Names models.IdentityConfig
	// CountTokens counts CLIP tokens for usage blocks; nil estimates
	// (the gateway loads no tokenizer).
	CountTokens func(string) int
	// MaxWait bounds a job whose context has no deadline (default 10m).
	MaxWait time.Duration
	// ResultPoll is how often a waiting job looks for its result object
	// in case the "done" hint was lost in a reconnect (default 2s).
	ResultPoll time.Duration
	// ResultTTL keeps unread result objects (default 15m).
	ResultTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Gateway is the scale-out server.Backend: it publishes jobs to the
// workers that advertise a model and waits for their results.
type Gateway struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	obj  jetstream.ObjectStore
	opts GatewayOptions
	log  *slog.Logger

	mu      sync.Mutex
	workers map[string]seenAdvert
	ident   models.Identity // the live workers' models
	// known are models some worker advertised since start: a name whose
	// workers all left still resolves, and Generate answers ErrNoWorker
	// (503, retry later) instead of a misleading 404.
	known      map[string]models.Info
	knownIdent models.Identity
	depth      map[string]int // model -> jobs in its stream, refreshed in the background

	jobNanos atomic.Int64 // moving average of a job's round trip, for Retry-After
	stop     chan struct{}
	done     sync.WaitGroup
	closed   atomic.Bool
}

type seenAdvert struct {
	ad   advert
	seen time.Time // local clock: immune to skew between hosts
	rev  uint64
}

// NewGateway adopts the shared buckets and starts watching the workers'
// advertisements. nc stays the caller's to close (after Close).
func NewGateway(ctx context.Context, nc *nats.Conn, opts GatewayOptions) (*Gateway, error) {
	if nc == nil {
		return nil, errors.New("dispatch: gateway needs a NATS connection")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 10 * time.Minute
	}
	if opts.ResultPoll <= 0 {
		opts.ResultPoll = 2 * time.Second
	}
	if opts.ResultTTL <= 0 {
		opts.ResultTTL = DefaultResultTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dispatch: jetstream: %w", err)
	}
	obj, err := ensureResults(ctx, js, opts.ResultTTL)
	if err != nil {
		return nil, err
	}
	kv, err := ensureWorkers(ctx, js, time.Minute)
	if err != nil {
		return nil, err
	}
	g := &Gateway{nc: nc, js: js, obj: obj, opts: opts, log: opts.Logger,
		workers: map[string]seenAdvert{}, known: map[string]models.Info{}, depth: map[string]int{}, stop: make(chan struct{})}
	g.rebuild()
	g.done.Add(2)
	go func() { defer g.done.Done(); g.watchLoop(kv) }()
	go func() { defer g.done.Done(); g.refresh() }()
	return g, nil
}

// Close stops the watcher and the depth refresher; jobs in flight keep
// their own contexts.
func (g *Gateway) Close() {
	if g.closed.CompareAndSwap(false, true) {
		close(g.stop)
		g.done.Wait()
	}
}

// watchIdle: a watcher silent this long is replaced. Live workers write
// every heartbeat, so silence means none is left or the watcher lost its
// server (a restart); a fresh watcher costs one consumer.
const watchIdle = 5 * time.Second

// watchLoop keeps a watcher on the advertisement bucket until Close.
func (g *Gateway) watchLoop(kv jetstream.KeyValue) {
	for {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := kv.WatchAll(ctx)
		if err == nil {
			g.watch(w)
		} else {
			g.log.Warn("watch worker adverts", "err", err)
		}
		cancel()
		select {
		case <-g.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// watch applies one watcher's updates until Close or watchIdle of silence.
func (g *Gateway) watch(w jetstream.KeyWatcher) {
	defer w.Stop()
	idle := time.NewTimer(watchIdle)
	defer idle.Stop()
	initial := true
	for {
		select {
		case <-g.stop:
			return
		case <-idle.C:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			idle.Reset(watchIdle)
			if e == nil { // the current values are all in
				initial = false
				continue
			}
			g.apply(e, initial)
		}
	}
}

func (g *Gateway) apply(e jetstream.KeyValueEntry, initial bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(g.workers, e.Key())
		g.rebuildLocked()
		return
	}
	ad, err := decodeAdvert(e.Value())
	if err != nil || ad.Worker != e.Key() {
		g.log.Warn("ignoring a bad worker advertisement", "key", e.Key(), "err", err)
		return
	}
	// A live update is fresh now (the local clock, immune to skew). A
	// value replayed by a new watcher is as old as it was: unchanged since
	// we saw it, or else its server-side write time.
	seen := g.opts.Now()
	if initial {
		if prev, ok := g.workers[ad.Worker]; ok && prev.rev == e.Revision() {
			seen = prev.seen
		} else if c := e.Created(); c.Before(seen) {
			seen = c
		}
	}
	g.workers[ad.Worker] = seenAdvert{ad: ad, seen: seen, rev: e.Revision()}
	g.rebuildLocked()
}

// refresh expires silent workers and samples the queues' depth.
func (g *Gateway) refresh() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		g.rebuild()
		depth := map[string]int{}
		for _, m := range g.Models() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if s, err := g.js.Stream(ctx, streamName(m.ID)); err == nil {
				if info, err := s.Info(ctx); err == nil {
					depth[m.ID] = int(info.State.Msgs)
				}
			}
			cancel()
		}
		g.mu.Lock()
		g.depth = depth
		g.mu.Unlock()
	}
}

func (g *Gateway) rebuild() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rebuildLocked()
}

// rebuildLocked drops expired workers and recomputes what names mean from
// the live ones. Two workers advertising one id: the freshest advert wins.
func (g *Gateway) rebuildLocked() {
	now := g.opts.Now()
	byID := map[string]models.Info{}
	fresh := map[string]time.Time{}
	for id, w := range g.workers {
		if now.Sub(w.seen) > w.ad.ttl() {
			delete(g.workers, id)
			continue
		}
		for _, m := range w.ad.Models {
			if t, ok := fresh[m.ID]; !ok || w.seen.After(t) {
				byID[m.ID], fresh[m.ID] = m, w.seen
			}
		}
	}
	maps.Copy(g.known, byID)
	g.ident = models.NewIdentity(sortedInfos(byID), g.opts.Names)
	g.knownIdent = models.NewIdentity(sortedInfos(g.known), g.opts.Names)
}

func sortedInfos(byID map[string]models.Info) []models.Info {
	return slices.SortedFunc(maps.Values(byID), func(a, b models.Info) int { return cmpString(a.ID, b.ID) })
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// identity is what names mean now, expiring silent workers first.
func (g *Gateway) identity() models.Identity {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rebuildLocked()
	return g.ident
}

// liveWorkers counts the live workers that advertise model.
func (g *Gateway) liveWorkers(model string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rebuildLocked()
	n := 0
	for _, w := range g.workers {
		if slices.ContainsFunc(w.ad.Models, func(m models.Info) bool { return m.ID == model }) {
			n++
		}
	}
	return n
}

// Models lists the models some live worker advertises.
func (g *Gateway) Models() []models.Info { return g.identity().Models() }

// Resolve maps a name to an advertised model, or to one advertised
// earlier whose workers have all gone (Generate then says ErrNoWorker).
func (g *Gateway) Resolve(name string) (models.Info, bool) {
	if info, ok := g.identity().Resolve(name); ok {
		return info, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.knownIdent.Resolve(name)
}

// Aliases are the names that resolve through an alias now.
func (g *Gateway) Aliases() map[string]string { return g.identity().Aliases() }

// Default is the default model among the advertised ones.
func (g *Gateway) Default() models.DefaultState { return g.identity().Default() }

// Ready: NATS is connected and a live worker serves the default model.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !g.nc.IsConnected() {
		return fmt.Errorf("dispatch: NATS is %s", g.nc.Status())
	}
	def := g.Default()
	if def.ID == "" {
		return fmt.Errorf("%w: no worker advertises any model", ErrNoWorker)
	}
	return nil
}

// CountTokens counts (or estimates) CLIP tokens.
func (g *Gateway) CountTokens(text string) int {
	if g.opts.CountTokens != nil {
		return g.opts.CountTokens(text)
	}
	return estimateTokens(text)
}

// Stats sums the live workers' registry counters.
func (g *Gateway) Stats() models.Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s models.Stats
	for _, w := range g.workers {
		s.Resident += w.ad.Stats.Resident
		s.Loads += w.ad.Stats.Loads
		s.Unloads += w.ad.Stats.Unloads
		s.LoadNanos += w.ad.Stats.LoadNanos
	}
	return s
}

// QueueDepth is the jobs queued or running in every model's stream, as
// sampled within the last second.
func (g *Gateway) QueueDepth() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, d := range g.depth {
		n += d
	}
	return n
}
