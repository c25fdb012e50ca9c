package auth

import (
	"context"
	"errors"
	"testing"
)

// Server-wide default limits apply to keys that set none, field by field,
// and give them rate-limit headers; a key's own limit wins.
func TestDefaultLimits(t *testing.T) {
	s := openTestStore(t)
	clock := newFakeClock(testStart)
	g, err := New(s, Options{Now: clock.Now, DefaultLimits: Limits{RequestsPerMinute: 3, ImagesPerMinute: 5, ImagesPerDay: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, plain := mustCreate(t, g, KeySpec{Name: "plain"})
	_, own := mustCreate(t, g, KeySpec{Name: "own", Limits: Limits{RequestsPerMinute: 10}})

	if h := g.RateHeaders(ctx, plain); h.LimitRequests != 3 || h.RemainingRequests != 3 || h.LimitImages != 5 || h.RemainingImages != 5 {
		t.Errorf("plain key headers %+v, want the defaults", h)
	}
	if h := g.RateHeaders(ctx, own); h.LimitRequests != 10 || h.LimitImages != 5 {
		t.Errorf("own key headers %+v, want its 10 requests and the default 5 images", h)
	}
	if got := g.DefaultLimits(); got != (Limits{RequestsPerMinute: 3, ImagesPerMinute: 5}) {
		t.Errorf("DefaultLimits = %+v: only the per-minute limits are defaults", got)
	}
	for i := range 3 {
		a, err := g.Admit(ctx, plain, "m", 1)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if err := a.Finish(ctx, Usage{Images: 1}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = g.Admit(ctx, plain, "m", 1)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Limit != LimitRequests || rl.Headers.LimitRequests != 3 || rl.Headers.RemainingRequests != 0 {
		t.Fatalf("4th request: %v (%+v), want the default request limit", err, rl)
	}
	if _, err := g.Admit(ctx, own, "m", 1); err != nil {
		t.Errorf("own key: %v", err)
	}
}

func TestNoDefaultLimits(t *testing.T) {
	g, _, _ := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{})
	if h := g.RateHeaders(context.Background(), k); h != (RateHeaders{}) {
		t.Errorf("headers %+v without defaults, want none", h)
	}
	neg, err := New(openTestStore(t), Options{DefaultLimits: Limits{RequestsPerMinute: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if neg.DefaultLimits() != (Limits{}) {
		t.Errorf("negative default kept: %+v", neg.DefaultLimits())
	}
}
