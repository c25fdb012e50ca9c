package cache

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sdgate/sdgate/internal/testsvc"
)

// startRedis runs a throwaway redis-server for the test (skipping when it
// is not installed; scripts/ci-deps.sh installs it in CI).
func startRedis(tb testing.TB) string { return testsvc.StartRedis(tb) }

// freeLoopbackAddr is a loopback address nothing listens on.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newTestRedis(t *testing.T, opts RedisOptions) *Redis {
	t.Helper()
	r, err := NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func TestNewRedisOptions(t *testing.T) {
	tests := []struct {
		name string
		opts RedisOptions
	}{
		{"neither Addr nor URL", RedisOptions{}},
		{"both Addr and URL", RedisOptions{Addr: "127.0.0.1:6379", URL: "redis://127.0.0.1:6379"}},
		{"bad URL", RedisOptions{URL: "http://example"}},
		{"negative TTL", RedisOptions{Addr: "127.0.0.1:6379", TTL: -time.Second}},
		{"negative max entry", RedisOptions{Addr: "127.0.0.1:6379", MaxEntryBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRedis(tt.opts); !errors.Is(err, ErrBadOptions) {
				t.Errorf("NewRedis err = %v, want ErrBadOptions", err)
			}
		})
	}
}

func TestRedisPingUnreachable(t *testing.T) {
	r := newTestRedis(t, RedisOptions{Addr: freeLoopbackAddr(t), DialTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
	if _, _, err := r.Get(ctx, keyN(1)); err == nil {
		t.Error("Get from a closed port succeeded")
	}
}

func TestRedisRoundTrip(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	r := newTestRedis(t, RedisOptions{Addr: addr, Prefix: "test:", TTL: time.Hour})
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	want := codecCases()[1]
	k := keyN(1)

	if _, ok, err := r.Get(ctx, k); ok || err != nil {
		t.Fatalf("Get before Add: ok %v err %v, want a clean miss", ok, err)
	}
	if err := r.Add(ctx, k, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Get(ctx, k)
	if err != nil || !ok {
		t.Fatalf("Get after Add: ok %v err %v", ok, err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// The key is prefix + hex key, with the configured TTL.
	ttl, err := r.client.TTL(ctx, "test:"+k.String()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL %v, want about 1h", ttl)
	}

	// A corrupt value is an error, not a hit.
	if err := r.client.Set(ctx, "test:"+keyN(2).String(), "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Get(ctx, keyN(2)); ok || !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt value: ok %v err %v, want ErrCorrupt", ok, err)
	}
}

func TestRedisRejectsLargeEntries(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	r := newTestRedis(t, RedisOptions{Addr: addr, MaxEntryBytes: 1000})
	if err := r.Add(ctx, keyN(1), Entry{Images: [][]byte{make([]byte, 2000)}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Get(ctx, keyN(1)); ok {
		t.Error("an entry over MaxEntryBytes was stored")
	}
	if s := r.Stats(); s.Rejected != 1 {
		t.Errorf("Stats %+v, want 1 rejected", s)
	}
}

// TestRedisURLAndDB: the URL form works, and databases stay apart.
func TestRedisURLAndDB(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	db2 := newTestRedis(t, RedisOptions{URL: "redis://" + addr + "/2"})
	db0 := newTestRedis(t, RedisOptions{Addr: addr})
	if err := db2.Add(ctx, keyN(1), Entry{ContentType: "image/png"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db2.Get(ctx, keyN(1)); !ok || err != nil {
		t.Errorf("db 2: ok %v err %v, want a hit", ok, err)
	}
	if _, ok, err := db0.Get(ctx, keyN(1)); ok || err != nil {
		t.Errorf("db 0: ok %v err %v, want a miss", ok, err)
	}
}

// TestRedisSharedBetweenInstances: what one instance computed is a hit on
// another that shares the server.
func TestRedisSharedBetweenInstances(t *testing.T) {
	addr := startRedis(t)
	instances := make([]*Cache, 2)
	for i := range instances {
		c, err := New(newTestRedis(t, RedisOptions{Addr: addr}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		instances[i] = c
	}
	p := Params{Prompt: "shared", Seed: 1, HasSeed: true, N: 2}
	var cnt counter
	first, o, err := instances[0].Do(context.Background(), p, cnt.compute)
	if err != nil || o != Miss {
		t.Fatalf("instance 0: %v %v, want miss", o, err)
	}
	for i := range 3 {
		got, o, err := instances[1].Do(context.Background(), p, cnt.compute)
		if err != nil || o != Hit {
			t.Fatalf("instance 1 call %d: %v %v, want hit", i, o, err)
		}
		if diff := cmp.Diff(first, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("instance 1 got (-want +got):\n%s", diff)
		}
	}
	if cnt.runs.Load() != 1 {
		t.Errorf("computed %d times across instances, want 1", cnt.runs.Load())
	}
}

// TestRedisCorruptValueIsRecomputed: a value the cache cannot read costs a
// computation, not a failed request.
func TestRedisCorruptValueIsRecomputed(t *testing.T) {
	addr := startRedis(t)
	r := newTestRedis(t, RedisOptions{Addr: addr})
	c, err := New(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Prompt: "p", HasSeed: true}
	if err := r.client.Set(context.Background(), DefaultRedisPrefix+KeyOf(p).String(), strconv.Itoa(42), 0).Err(); err != nil {
		t.Fatal(err)
	}
	var cnt counter
	if _, o, err := c.Do(context.Background(), p, cnt.compute); err != nil || o != Miss {
		t.Fatalf("corrupt stored value: %v %v, want a computed miss", o, err)
	}
	if _, o, err := c.Do(context.Background(), p, cnt.compute); err != nil || o != Hit {
		t.Errorf("after recompute: %v %v, want hit", o, err)
	}
	if s := c.Stats(); s.StoreErrors != 2 { // the first lookup and the flight's
		t.Errorf("store errors %d, want 2", s.StoreErrors)
	}
}
