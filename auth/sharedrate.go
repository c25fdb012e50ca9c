package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// spendRate takes one request and images images from key's per-minute
// allowances: in the shared limiter when there is one, else (or when it
// fails and the Gate does not fail closed) in st's buckets. Callers hold
// st.mu.
func (g *Gate) spendRate(ctx context.Context, st *keyState, key *Key, now time.Time, images int) (RateHeaders, error) {
	if g.limiter != nil {
		h, err := g.limiter.Take(ctx, key.ID, g.limitsOf(key), images)
		var rl *RateLimitError
		switch {
		case err == nil || errors.As(err, &rl):
			return h, err
		case ctx.Err() != nil:
			return RateHeaders{}, fmt.Errorf("admit: %w", ctx.Err())
		case g.failShut:
			if !errors.Is(err, ErrRateLimiterUnavailable) {
				err = fmt.Errorf("%w: %w", ErrRateLimiterUnavailable, err)
			}
			return RateHeaders{}, err
		}
		// Falling back, each gateway enforces the limits alone: during the
		// outage a key may get up to one allowance per gateway.
		g.limiterFailed(ctx, "take", err)
	}
	if err := st.checkRate(now, images); err != nil {
		return RateHeaders{}, err
	}
	st.requests.take(now, 1)
	st.images.take(now, images)
	return st.headers(now), nil
}

// limiterLogEvery spaces the log lines of a limiter that keeps failing.
const limiterLogEvery = 10 * time.Second

// limiterFailed logs a shared limiter failure, at most once per
// limiterLogEvery.
func (g *Gate) limiterFailed(ctx context.Context, op string, err error) {
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if last != 0 && now-last < int64(limiterLogEvery) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	g.log.WarnContext(ctx, "shared rate limiter failed; this gateway limits on its own until it answers",
		"op", op, "err", err)
}
