package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sdgate/sdgate/internal/testsvc"
)

// newRedisGate is a Gate over store whose limits live in the Redis at addr,
// with its own limiter (its own connection pool): one simulated gateway.
func newRedisGate(t testing.TB, store Store, addr string, clock *fakeClock, opts Options) *Gate {
	t.Helper()
	l, err := NewRedisRateLimiter(RedisLimiterOptions{Addr: addr, Now: clock.Now, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	opts.Now, opts.RateLimiter = clock.Now, l
	g, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Eight gateways sharing one Redis let exactly the per-minute limit through,
// however their requests interleave.
func TestRedisRateLimitAcrossGateways(t *testing.T) {
	addr := testsvc.StartRedis(t)
	store := openTestStore(t)
	clock := newFakeClock(testStart)
	tests := []struct {
		name     string
		limits   Limits
		defaults Limits // the servers' --requests-per-minute / --images-per-minute
		images   int
		allowed  int
	}{
		{"requests per minute", Limits{RequestsPerMinute: 10}, Limits{}, 1, 10},
		{"images per minute", Limits{RequestsPerMinute: 1000, ImagesPerMinute: 25}, Limits{}, 2, 12},
		{"server defaults for a key without limits", Limits{}, Limits{RequestsPerMinute: 10, ImagesPerMinute: 1000}, 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, k := mustCreateIn(t, store, KeySpec{Name: tt.name, Limits: tt.limits})
			const gateways, perGateway = 8, 10
			var admitted, limited atomic.Int32
			var wg sync.WaitGroup
			for range gateways {
				g := newRedisGate(t, store, addr, clock, Options{DefaultLimits: tt.defaults})
				for range perGateway {
					wg.Add(1)
					go func() {
						defer wg.Done()
						a, err := g.Admit(context.Background(), k, "m", tt.images)
						var rl *RateLimitError
						switch {
						case err == nil:
							admitted.Add(1)
							if err := a.Finish(context.Background(), Usage{Images: tt.images, Status: 200}); err != nil {
								t.Error(err)
							}
						case errors.As(err, &rl):
							limited.Add(1)
						default:
							t.Error(err)
						}
					}()
				}
			}
			wg.Wait()
			if got := admitted.Load(); got != int32(tt.allowed) || limited.Load() != gateways*perGateway-int32(tt.allowed) {
				t.Errorf("admitted %d, limited %d; want exactly %d admitted", got, limited.Load(), tt.allowed)
			}
		})
	}
}

// The shared limiter answers what the in-process one does: the same
// headers, the same refusals and waits, the same refill.
func TestRedisRateLimitMatchesInProcess(t *testing.T) {
	addr := testsvc.StartRedis(t)
	local, store, clock := newTestGate(t)
	shared := newRedisGate(t, store, addr, clock, Options{})
	_, k := mustCreate(t, local, KeySpec{Limits: Limits{RequestsPerMinute: 5, ImagesPerMinute: 8}})
	ctx := context.Background()
	type step struct {
		advance time.Duration
		images  int
	}
	steps := []step{{0, 3}, {0, 3}, {time.Second, 3}, {7 * time.Second, 1}, {0, 9}, {0, 1}, {0, 1},
		{30 * time.Second, 2}, {0, 1}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {2 * time.Minute, 8}}
	// What a client sees. Resets and waits are compared to the
	// millisecond: x/time/rate's float arithmetic can land 1ms off.
	type answer struct {
		Headers    map[string]string // limits and remaining
		Resets     [2]time.Duration
		Refused    string // the limit hit
		RetryAfter time.Duration
		TooLarge   bool
	}
	view := func(h RateHeaders) answer {
		m := map[string]string{}
		h.Apply(func(k, v string) {
			if !strings.Contains(k, "reset") {
				m[k] = v
			}
		})
		return answer{Headers: m, Resets: [2]time.Duration{h.ResetRequests, h.ResetImages}}
	}
	run := func(g *Gate) []answer {
		var out []answer
		for _, s := range steps {
			clock.Advance(s.advance)
			a, err := g.Admit(ctx, k, "m", s.images)
			if err != nil {
				var rl *RateLimitError
				if !errors.As(err, &rl) {
					t.Fatal(err)
				}
				v := view(rl.Headers)
				v.Refused, v.RetryAfter, v.TooLarge = rl.Limit, rl.RetryAfter, rl.TooLarge
				out = append(out, v)
				continue
			}
			if err := a.Finish(ctx, Usage{Images: s.images, Status: 200}); err != nil {
				t.Fatal(err)
			}
			out = append(out, view(a.Headers), view(g.RateHeaders(ctx, k)))
		}
		return out
	}
	want := run(local)
	clock.Advance(5 * time.Minute) // the same instants relative to a full bucket
	got := run(shared)
	withinMs := cmp.Comparer(func(a, b time.Duration) bool { return (a - b).Abs() <= time.Millisecond })
	if d := cmp.Diff(want, got, withinMs); d != "" {
		t.Errorf("shared limiter differs from the in-process one (-local +shared):\n%s", d)
	}
	refused := 0
	for _, a := range want {
		if a.Refused != "" {
			refused++
		}
	}
	if refused < 3 {
		t.Errorf("only %d refusals: the steps do not exercise the limits", refused)
	}
}

// Redis down: by default the gateway falls back to its own buckets (still
// limiting) and says so in the log; failing closed refuses instead.
func TestRedisRateLimiterDown(t *testing.T) {
	store := openTestStore(t)
	clock := newFakeClock(testStart)
	_, k := mustCreateIn(t, store, KeySpec{Limits: Limits{RequestsPerMinute: 2}})
	ctx := context.Background()
	var logs bytes.Buffer
	open := newRedisGate(t, store, "127.0.0.1:1", clock, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 2 {
		a, err := open.Admit(ctx, k, "m", 1)
		if err != nil {
			t.Fatalf("fallback request %d: %v", i+1, err)
		}
		if a.Headers.RemainingRequests != 1-i {
			t.Errorf("fallback request %d headers %+v", i+1, a.Headers)
		}
		if err := a.Finish(ctx, Usage{Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	var rl *RateLimitError
	if _, err := open.Admit(ctx, k, "m", 1); !errors.As(err, &rl) {
		t.Errorf("3rd request on the fallback: %v, want the local limit", err)
	}
	if !strings.Contains(logs.String(), "shared rate limiter failed") {
		t.Errorf("fallback not logged: %q", logs.String())
	}

	closed := newRedisGate(t, store, "127.0.0.1:1", clock, Options{RateLimitFailClosed: true})
	if _, err := closed.Admit(ctx, k, "m", 1); !errors.Is(err, ErrRateLimiterUnavailable) {
		t.Errorf("fail closed: err %v, want ErrRateLimiterUnavailable", err)
	}
	// Keys without per-minute limits never ask the limiter.
	_, free := mustCreateIn(t, store, KeySpec{})
	if _, err := closed.Admit(ctx, free, "m", 1); err != nil {
		t.Errorf("unlimited key with the limiter down: %v", err)
	}
}

func TestNewRedisRateLimiterOptions(t *testing.T) {
	for name, o := range map[string]RedisLimiterOptions{
		"neither": {}, "both": {Addr: "a:1", URL: "redis://a:1"}, "bad URL": {URL: "http://x"},
	} {
		if _, err := NewRedisRateLimiter(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseBucketReply(f *testing.F) {
	f.Add(int64(0), "0", "4.5", "7")
	f.Add(int64(2), "1234.5", "nan", "inf")
	f.Fuzz(func(t *testing.T, status int64, a, b, c string) {
		r, err := parseBucketReply([]any{status, a, b, c})
		if err == nil {
			_ = r.headers(10, 10) // must not panic on any accepted value
		}
	})
}

// mustCreateIn makes a key straight in store.
func mustCreateIn(t testing.TB, store Store, spec KeySpec) (string, *Key) {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test"
	}
	secret, k, err := CreateKey(context.Background(), store, spec)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return secret, k
}
