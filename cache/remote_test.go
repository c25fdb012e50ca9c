package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// gateways are n caches, each on its own connection to the Redis at addr,
// as n sdgate instances would be.
func gateways(t *testing.T, addr string, n int, opts Options) []*Cache {
	t.Helper()
	out := make([]*Cache, n)
	for i := range out {
		c, err := New(newTestRedis(t, RedisOptions{Addr: addr}), opts)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// slowCompute counts its runs and takes d (or until ctx ends); it fails
// its first run when failFirst.
type slowCompute struct {
	d         time.Duration
	failFirst bool
	runs      atomic.Int64
}

var errLeaderFailed = errors.New("leader failed")

func (s *slowCompute) compute(ctx context.Context) (Entry, error) {
	n := s.runs.Add(1)
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	if s.failFirst && n == 1 {
		return Entry{}, errLeaderFailed
	}
	return Entry{Images: [][]byte{fmt.Appendf(nil, "image %d", n)}, Seeds: []uint64{7}, ContentType: "image/png", Elapsed: s.d}, nil
}

type remoteResult struct {
	e   Entry
	o   Outcome
	err error
}

// doAll runs p on every cache at once, the first a little ahead so it
// leads.
func doAll(caches []*Cache, p Params, compute ComputeFunc) []remoteResult {
	out := make([]remoteResult, len(caches))
	var wg sync.WaitGroup
	for i, c := range caches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].e, out[i].o, out[i].err = c.Do(context.Background(), p, compute)
		}()
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	wg.Wait()
	return out
}

// Identical requests on three instances at once compute once; the others
// wait for the entry in Redis and count as coalesced.
func TestRemoteCoalescing(t *testing.T) {
	addr := startRedis(t)
	// A claim TTL far shorter than the computation: renewal keeps it.
	caches := gateways(t, addr, 3, Options{ClaimTTL: 90 * time.Millisecond, RemotePoll: 10 * time.Millisecond})
	sc := &slowCompute{d: 400 * time.Millisecond}
	res := doAll(caches, Params{Prompt: "p", Seed: 1, HasSeed: true}, sc.compute)
	if n := sc.runs.Load(); n != 1 {
		t.Fatalf("computed %d times across instances, want 1", n)
	}
	want := []Outcome{Miss, Coalesced, Coalesced}
	for i, r := range res {
		if r.err != nil || r.o != want[i] {
			t.Errorf("instance %d: %v %v, want %v", i, r.o, r.err, want[i])
		}
		if d := cmp.Diff(res[0].e, r.e, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("instance %d entry (-leader +got):\n%s", i, d)
		}
	}
	if s := caches[1].Stats(); s.RemoteWaits != 1 || s.RemoteCoalesced != 1 || s.Coalesced != 1 || s.Misses != 0 {
		t.Errorf("follower stats %+v", s)
	}
}

// A leader that fails lets go of its claim; a follower does not inherit its
// error (it may be the leader's own: its queue, its client leaving) but
// claims and computes itself.
func TestRemoteLeaderFailureHandsOver(t *testing.T) {
	addr := startRedis(t)
	caches := gateways(t, addr, 2, Options{RemotePoll: 10 * time.Millisecond})
	sc := &slowCompute{d: 200 * time.Millisecond, failFirst: true}
	res := doAll(caches, Params{Prompt: "p", Seed: 2, HasSeed: true}, sc.compute)
	if !errors.Is(res[0].err, errLeaderFailed) {
		t.Errorf("leader: %v, want its own failure", res[0].err)
	}
	if res[1].err != nil || res[1].o != Miss {
		t.Errorf("follower: %v %v, want a miss it computed", res[1].o, res[1].err)
	}
	if n := sc.runs.Load(); n != 2 {
		t.Errorf("computed %d times, want 2 (the failure, then the follower)", n)
	}
}

// A leader that died holding its claim (no release, no renewal) delays
// followers by the claim's TTL, no more.
func TestRemoteDeadLeaderClaimLapses(t *testing.T) {
	addr := startRedis(t)
	dead := newTestRedis(t, RedisOptions{Addr: addr})
	p := Params{Prompt: "p", Seed: 3, HasSeed: true}
	if _, ok, err := dead.Claim(context.Background(), KeyOf(p), 300*time.Millisecond); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	c := gateways(t, addr, 1, Options{RemotePoll: 10 * time.Millisecond})[0]
	var cnt counter
	start := time.Now()
	_, o, err := c.Do(context.Background(), p, cnt.compute)
	if took := time.Since(start); err != nil || o != Miss || took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("after a dead leader: %v %v in %v, want a miss after about 300ms", o, err, took)
	}
}

// A follower waits RemoteWait at most, then computes on its own.
func TestRemoteWaitIsBounded(t *testing.T) {
	addr := startRedis(t)
	other := newTestRedis(t, RedisOptions{Addr: addr})
	p := Params{Prompt: "p", Seed: 4, HasSeed: true}
	if _, ok, err := other.Claim(context.Background(), KeyOf(p), time.Hour); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	c := gateways(t, addr, 1, Options{RemoteWait: 200 * time.Millisecond, RemotePoll: 10 * time.Millisecond})[0]
	var cnt counter
	start := time.Now()
	if _, o, err := c.Do(context.Background(), p, cnt.compute); err != nil || o != Miss || time.Since(start) < 200*time.Millisecond {
		t.Errorf("past the wait: %v %v after %v, want a miss after 200ms", o, err, time.Since(start))
	}
	// A caller that leaves while following returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	q := Params{Prompt: "q", Seed: 4, HasSeed: true}
	if _, ok, err := other.Claim(context.Background(), KeyOf(q), time.Hour); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, _, err := c.Do(ctx, q, cnt.compute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller that left: %v, want its deadline", err)
	}
}

// Claims belong to their token: a lapsed claim taken over by another
// instance is neither extended nor released by the first.
func TestRedisClaimTokens(t *testing.T) {
	addr := startRedis(t)
	r := newTestRedis(t, RedisOptions{Addr: addr})
	ctx := context.Background()
	k := KeyOf(Params{Prompt: "claims"})
	old, ok, err := r.Claim(ctx, k, 50*time.Millisecond)
	if !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if _, ok, _ := r.Claim(ctx, k, time.Minute); ok {
		t.Fatal("a held claim was claimed again")
	}
	time.Sleep(100 * time.Millisecond)
	cur, ok, err := r.Claim(ctx, k, time.Minute)
	if !ok || err != nil {
		t.Fatalf("claim after lapse: %v %v", ok, err)
	}
	if ok, err := r.Extend(ctx, k, old, time.Minute); ok || err != nil {
		t.Errorf("lapsed token extended: %v %v", ok, err)
	}
	if err := r.Release(ctx, k, old); err != nil {
		t.Fatal(err)
	}
	if held, _ := r.Claimed(ctx, k); !held {
		t.Error("a lapsed token released the new holder's claim")
	}
	if ok, err := r.Extend(ctx, k, cur, time.Minute); !ok || err != nil {
		t.Errorf("holder's extend: %v %v", ok, err)
	}
	if err := r.Release(ctx, k, cur); err != nil {
		t.Fatal(err)
	}
	if held, _ := r.Claimed(ctx, k); held {
		t.Error("claim still held after its holder released it")
	}
}

func TestNewRejectsTinyClaimTTL(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, time.Nanosecond, 2 * time.Millisecond} {
		if _, err := New(newMemoryMust(t), Options{ClaimTTL: ttl}); !errors.Is(err, ErrBadOptions) {
			t.Errorf("ClaimTTL %v: err %v, want ErrBadOptions", ttl, err)
		}
	}
}

func newMemoryMust(t *testing.T) *Memory {
	t.Helper()
	m, err := NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
