package auth

import (
	"math"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Rate-limit header names; the package documentation describes them.
const (
	HeaderLimitRequests     = "x-ratelimit-limit-requests"
	HeaderRemainingRequests = "x-ratelimit-remaining-requests"
	HeaderResetRequests     = "x-ratelimit-reset-requests"
	HeaderLimitImages       = "x-ratelimit-limit-images"
	HeaderRemainingImages   = "x-ratelimit-remaining-images"
	HeaderResetImages       = "x-ratelimit-reset-images"
)

// RateHeaders are a key's rate-limit values at one moment. A zero Limit
// means that limit is not configured, and its headers are left out.
type RateHeaders struct {
	LimitRequests, RemainingRequests int
	ResetRequests                    time.Duration
	LimitImages, RemainingImages     int
	ResetImages                      time.Duration
}

// Apply hands every header to set: http.Header.Set and gin's c.Header both fit.
func (h RateHeaders) Apply(set func(name, value string)) {
	if h.LimitRequests > 0 {
		set(HeaderLimitRequests, strconv.Itoa(h.LimitRequests))
		set(HeaderRemainingRequests, strconv.Itoa(h.RemainingRequests))
		set(HeaderResetRequests, formatReset(h.ResetRequests))
	}
	if h.LimitImages > 0 {
		set(HeaderLimitImages, strconv.Itoa(h.LimitImages))
		set(HeaderRemainingImages, strconv.Itoa(h.RemainingImages))
		set(HeaderResetImages, formatReset(h.ResetImages))
	}
}

// formatReset writes a Go duration rounded up to the millisecond, as OpenAI
// does ("1s", "6m0s", "17ms"); clients parse it with time.ParseDuration.
func formatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ceilMillis(d).String()
}

func ceilMillis(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// window is a per-minute token bucket: a full minute's allowance as burst,
// refilled continuously. The zero window is unlimited.
type window struct {
	lim *rate.Limiter
	max int
}

func newWindow(perMinute int) window {
	if perMinute <= 0 {
		return window{}
	}
	return window{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute), max: perMinute}
}

func (w window) unlimited() bool { return w.lim == nil }

// wait says how long until n tokens are there at now; tooLarge when they
// never can be. Callers hold the key's lock, so a zero wait means take works.
func (w window) wait(now time.Time, n int) (wait time.Duration, tooLarge bool) {
	if w.unlimited() || n == 0 {
		return 0, false
	}
	if n > w.max {
		return 0, true
	}
	have := w.lim.TokensAt(now)
	if have >= float64(n) {
		return 0, false
	}
	secs := (float64(n) - have) / float64(w.lim.Limit())
	return ceilMillis(time.Duration(math.Ceil(secs * float64(time.Second)))), false
}

func (w window) take(now time.Time, n int) {
	if !w.unlimited() && n > 0 {
		w.lim.AllowN(now, n)
	}
}

// state is what is left at now and how long until the bucket is full.
func (w window) state(now time.Time) (remaining int, reset time.Duration) {
	if w.unlimited() {
		return 0, 0
	}
	have := w.lim.TokensAt(now)
	missing := float64(w.max) - have
	secs := missing / float64(w.lim.Limit())
	return int(math.Floor(have)), time.Duration(math.Ceil(secs * float64(time.Second)))
}
