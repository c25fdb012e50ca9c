package auth

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// admit runs Admit and fails the test on error.
func admit(t *testing.T, g *Gate, k *Key, images int) *Admission {
	t.Helper()
	a, err := g.Admit(context.Background(), k, "m", images)
	if err != nil {
		t.Fatalf("Admit(%d images): %v", images, err)
	}
	return a
}

func finish(t *testing.T, a *Admission, images int) {
	t.Helper()
	if err := a.Finish(context.Background(), Usage{Images: images, Status: 200}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	g, _, clock := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{RequestsPerMinute: 3}})
	wantRemaining := []int{2, 1, 0}
	for i, want := range wantRemaining {
		a := admit(t, g, k, 1)
		if a.Headers.LimitRequests != 3 || a.Headers.RemainingRequests != want {
			t.Errorf("request %d: headers %+v, want limit 3 remaining %d", i+1, a.Headers, want)
		}
		finish(t, a, 1)
	}
	_, err := g.Admit(context.Background(), k, "m", 1)
	var rl *RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("4th request: err = %v, want *RateLimitError", err)
	}
	if rl.Limit != LimitRequests || rl.RetryAfter != 20*time.Second || rl.TooLarge || rl.Used != 3 {
		t.Errorf("RateLimitError = %+v, want requests, retry after 20s", rl)
	}
	if rl.Headers.RemainingRequests != 0 || rl.Headers.ResetRequests != time.Minute {
		t.Errorf("429 headers = %+v, want 0 remaining, reset 1m", rl.Headers)
	}
	clock.Advance(rl.RetryAfter)
	finish(t, admit(t, g, k, 1), 1)
}

func TestImagesPerMinute(t *testing.T) {
	g, _, clock := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{RequestsPerMinute: 100, ImagesPerMinute: 10}})
	ctx := context.Background()
	finish(t, admit(t, g, k, 4), 4)
	a := admit(t, g, k, 4)
	if a.Headers.RemainingImages != 2 || a.Headers.ResetImages != 48*time.Second {
		t.Errorf("headers %+v, want 2 images left, full again in 48s", a.Headers)
	}
	finish(t, a, 4)

	cases := []struct {
		name     string
		images   int
		wantWait time.Duration
		tooLarge bool
	}{
		{"needs 2 more images: 12s", 4, 12 * time.Second, false},
		{"more than a minute's worth", 11, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := g.Admit(ctx, k, "m", c.images)
			var rl *RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("err = %v, want *RateLimitError", err)
			}
			if rl.Limit != LimitImages || rl.RetryAfter != c.wantWait || rl.TooLarge != c.tooLarge || rl.Requested != c.images {
				t.Errorf("RateLimitError = %+v", rl)
			}
		})
	}
	// Refused requests spent nothing: 98 requests and 2 images are left.
	h := g.RateHeaders(context.Background(), k)
	if h.RemainingRequests != 98 || h.RemainingImages != 2 {
		t.Errorf("after refusals: %+v, want 98 requests and 2 images left", h)
	}
	clock.Advance(12 * time.Second)
	finish(t, admit(t, g, k, 4), 4)
}

func TestRateHeadersApply(t *testing.T) {
	cases := []struct {
		name string
		h    RateHeaders
		want http.Header
	}{
		{"unlimited sets nothing", RateHeaders{}, http.Header{}},
		{"both", RateHeaders{LimitRequests: 60, RemainingRequests: 59, ResetRequests: time.Second,
			LimitImages: 10, RemainingImages: 0, ResetImages: 6 * time.Minute},
			http.Header{
				"X-Ratelimit-Limit-Requests":     {"60"},
				"X-Ratelimit-Remaining-Requests": {"59"},
				"X-Ratelimit-Reset-Requests":     {"1s"},
				"X-Ratelimit-Limit-Images":       {"10"},
				"X-Ratelimit-Remaining-Images":   {"0"},
				"X-Ratelimit-Reset-Images":       {"6m0s"},
			}},
		{"images only, sub-millisecond rounds up", RateHeaders{LimitImages: 5, RemainingImages: 4, ResetImages: 16*time.Millisecond + 1},
			http.Header{
				"X-Ratelimit-Limit-Images":     {"5"},
				"X-Ratelimit-Remaining-Images": {"4"},
				"X-Ratelimit-Reset-Images":     {"17ms"},
			}},
		{"full bucket", RateHeaders{LimitRequests: 1, RemainingRequests: 1},
			http.Header{
				"X-Ratelimit-Limit-Requests":     {"1"},
				"X-Ratelimit-Remaining-Requests": {"1"},
				"X-Ratelimit-Reset-Requests":     {"0s"},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := http.Header{}
			c.h.Apply(got.Set)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDailyQuota(t *testing.T) {
	g, _, clock := newTestGate(t)
	ctx := context.Background()
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{ImagesPerDay: 5}})
	finish(t, admit(t, g, k, 3), 3)
	pending := admit(t, g, k, 2) // reserved, not finished

	_, err := g.Admit(ctx, k, "m", 1)
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("err = %v, want *QuotaError", err)
	}
	want := QuotaError{Quota: QuotaDaily, Limit: 5, Used: 5, Requested: 1, ResetAt: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, *qe); diff != "" {
		t.Errorf("QuotaError (-want +got):\n%s", diff)
	}

	// The pending request failed: its reservation comes back.
	if err := pending.Finish(ctx, Usage{Images: 0, Status: 500}); err != nil {
		t.Fatal(err)
	}
	if err := pending.Finish(ctx, Usage{}); !errors.Is(err, ErrFinished) {
		t.Errorf("second Finish = %v, want ErrFinished", err)
	}
	finish(t, admit(t, g, k, 2), 1) // fewer images than asked: one comes back
	finish(t, admit(t, g, k, 1), 1)
	if _, err := g.Admit(ctx, k, "m", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("sixth image: err = %v, want ErrQuotaExceeded", err)
	}

	clock.Advance(14 * time.Hour) // past midnight UTC
	finish(t, admit(t, g, k, 5), 5)

	// A new Gate (a restart) seeds its counters from the store.
	g2, err := New(g.store, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Admit(ctx, k, "m", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("after restart: err = %v, want ErrQuotaExceeded", err)
	}
}

func TestTotalQuota(t *testing.T) {
	g, _, clock := newTestGate(t)
	ctx := context.Background()
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{ImageQuota: 4, RequestsPerMinute: 10}})
	finish(t, admit(t, g, k, 3), 3)
	clock.Advance(48 * time.Hour)
	_, err := g.Admit(ctx, k, "m", 2)
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Quota != QuotaTotal || !qe.ResetAt.IsZero() || qe.Used != 3 {
		t.Fatalf("err = %v, want total QuotaError with 3 used and no reset", err)
	}
	if h := g.RateHeaders(context.Background(), k); h.RemainingRequests != 10 {
		t.Errorf("quota refusal spent a request: %+v", h)
	}
	finish(t, admit(t, g, k, 1), 1)
	if _, err := g.Admit(ctx, k, "m", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("fifth image: err = %v, want ErrQuotaExceeded", err)
	}
	finish(t, admit(t, g, k, 0), 0) // requests without images still pass
}

func TestAdmitModels(t *testing.T) {
	g, _, _ := newTestGate(t)
	ctx := context.Background()
	_, k := mustCreate(t, g, KeySpec{Models: []string{"dall-e-2", "sd15-*"}, Limits: Limits{RequestsPerMinute: 5}})
	cases := []struct {
		model string
		ok    bool
	}{
		{"dall-e-2", true},
		{"sd15-lcm", true},
		{"", true}, // endpoints without a model
		{"dall-e-3", false},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			a, err := g.Admit(ctx, k, c.model, 1)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				finish(t, a, 1)
				return
			}
			var me *ModelError
			if !errors.As(err, &me) || !errors.Is(err, ErrModelNotAllowed) || me.Model != c.model {
				t.Errorf("err = %v, want ModelError for %s", err, c.model)
			}
		})
	}
	if h := g.RateHeaders(context.Background(), k); h.RemainingRequests != 2 {
		t.Errorf("a refused model spent a request: %d left, want 2", h.RemainingRequests)
	}
}

func TestAdmitWithoutKey(t *testing.T) {
	g, s, _ := newTestGate(t)
	ctx := context.Background()
	a, err := g.Admit(ctx, nil, "m", 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.Headers != (RateHeaders{}) {
		t.Errorf("headers without a key: %+v", a.Headers)
	}
	if err := a.Finish(ctx, Usage{RequestID: "req_1", Endpoint: "/v1/images/generations", Images: 3, Status: 200}); err != nil {
		t.Fatal(err)
	}
	days, err := s.UsageByDay(ctx, "", time.Time{})
	if err != nil || len(days) != 1 || days[0].KeyID != "" || days[0].Images != 3 {
		t.Errorf("usage = %+v, %v; want 3 images without a key", days, err)
	}
	if _, err := g.Admit(ctx, nil, "m", -1); err == nil {
		t.Error("negative image count admitted")
	}
}

func TestFinishRecordsEverything(t *testing.T) {
	g, s, clock := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{})
	cctx, cancel := context.WithCancel(context.Background())
	a, err := g.Admit(cctx, k, "dall-e-2", 2)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(1500 * time.Millisecond)
	cancel() // the client left: the record is written all the same
	u := Usage{RequestID: "req_x", Endpoint: "/v1/images/edits", Model: "sd15", Images: 1,
		Pixels: 512 * 512, Steps: 20, GPUSeconds: 1.25, Cached: false, Status: 499}
	if err := a.Finish(cctx, u); err != nil {
		t.Fatal(err)
	}
	var got UsageRecord
	var atMs, durMs int64
	err = s.db.QueryRow(`SELECT key_id, request_id, model, endpoint, at, duration_ms, images, pixels,
		steps, gpu_seconds, cached, status FROM usage`).Scan(&got.KeyID, &got.RequestID, &got.Model,
		&got.Endpoint, &atMs, &durMs, &got.Images, &got.Pixels, &got.Steps, &got.GPUSeconds, &got.Cached, &got.Status)
	if err != nil {
		t.Fatal(err)
	}
	got.At, got.Duration = fromMillis(atMs), time.Duration(durMs)*time.Millisecond
	want := UsageRecord{KeyID: k.ID, RequestID: "req_x", Model: "sd15", Endpoint: "/v1/images/edits",
		At: testStart, Duration: 1500 * time.Millisecond, Images: 1, Pixels: 512 * 512, Steps: 20,
		GPUSeconds: 1.25, Status: 499}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	stored, err := s.Key(context.Background(), k.ID)
	if err != nil || !stored.LastUsedAt.Equal(testStart.Add(1500*time.Millisecond)) {
		t.Errorf("LastUsedAt = %v, %v; want the end of the request", stored.LastUsedAt, err)
	}
}

func TestLimitsChangeInStore(t *testing.T) {
	g, _, _ := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{RequestsPerMinute: 2}})
	finish(t, admit(t, g, k, 0), 0)
	raised := *k
	raised.Limits.RequestsPerMinute = 100 // as Authenticate would return it after an update
	a := admit(t, g, &raised, 0)
	if a.Headers.LimitRequests != 100 || a.Headers.RemainingRequests != 99 {
		t.Errorf("headers after the limit changed: %+v, want 100 / 99", a.Headers)
	}
	finish(t, a, 0)
}
