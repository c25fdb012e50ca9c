package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// keyState is one key's limiters and quota counters, in memory so that
// admission is exact under concurrency: it is decided under mu.
type keyState struct {
	mu       sync.Mutex
	limits   Limits
	requests window
	images   window
	loaded   bool   // counters seeded from the store
	day      string // the UTC day today counts
	today    int64  // images finished on day
	total    int64  // images finished, ever
	reserved int64  // images of admitted requests not yet finished
}

// Admission is an admitted request. Call Finish exactly once, however the
// request ends.
type Admission struct {
	// Headers are the key's rate-limit values after this request: set them on
	// the response.
	Headers RateHeaders

	gate   *Gate
	state  *keyState // nil without a key
	keyID  string
	model  string
	images int
	at     time.Time
	// reservation is the store's quota reservation, settled by Finish's
	// usage record; "" when quota is counted in process or not limited.
	reservation string

	mu       sync.Mutex
	finished bool
}

// Usage is what a request used, reported to Finish.
type Usage struct {
	RequestID  string
	Endpoint   string
	Model      string // "" keeps the model given to Admit
	Images     int
	Pixels     int64
	Steps      int
	GPUSeconds float64
	Cached     bool
	Status     int
	Inputs     []string // digests of the input image(s) and mask, for edits and variations
	Family     string   // model family (sd15, sd2, sdxl)
	Generated  string   // size generated at, "WxH"
}

// Admit decides whether key may run a request for images images of model
// now. It checks the allowed models, then the quotas, then the per-minute
// limits, and reserves the images against the quotas; Finish settles them.
// model "" skips the model check (endpoints without one). A nil key
// (auth switched off) is admitted unconditionally and metered without a key.
func (g *Gate) Admit(ctx context.Context, key *Key, model string, images int) (*Admission, error) {
	if images < 0 {
		return nil, fmt.Errorf("admit: negative image count %d", images)
	}
	a := &Admission{gate: g, model: model, images: images}
	if key == nil {
		a.at = g.now()
		return a, nil
	}
	if model != "" && !key.CanUse(model) {
		return nil, &ModelError{Model: model}
	}
	st := g.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := g.now()
	if err := g.prepare(ctx, st, key, now); err != nil {
		return nil, err
	}
	var reservation string
	if g.reserver != nil {
		// The store reserves across every gateway; this process's counters
		// would see only its own requests. A key without quotas needs none.
		if key.Limits.ImagesPerDay > 0 || key.Limits.ImageQuota > 0 {
			id, err := g.reserver.ReserveQuota(ctx, key.ID, now, images,
				key.Limits.ImagesPerDay, key.Limits.ImageQuota)
			if err != nil {
				return nil, err
			}
			reservation = id
		}
	} else if err := st.checkQuota(now, images); err != nil {
		return nil, err
	}
	headers, err := g.spendRate(ctx, st, key, now, images)
	if err != nil {
		if reservation != "" {
			if rerr := g.reserver.ReleaseQuota(context.WithoutCancel(ctx), reservation); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	if g.reserver == nil {
		st.reserved += int64(images)
	}
	a.Headers = headers
	a.state, a.keyID, a.at, a.reservation = st, key.ID, now, reservation
	return a, nil
}

// RateHeaders are key's rate-limit values now, for responses that end
// before Admit (or without one). Nothing is spent.
func (g *Gate) RateHeaders(ctx context.Context, key *Key) RateHeaders {
	if key == nil {
		return RateHeaders{}
	}
	if g.limiter != nil {
		h, err := g.limiter.Peek(ctx, key.ID, g.limitsOf(key))
		if err == nil {
			return h
		}
		g.limiterFailed(ctx, "peek", err) // the headers are advice: show the local view
	}
	st := g.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setLimits(g.limitsOf(key))
	return st.headers(g.now())
}

func (g *Gate) state(key *Key) *keyState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.states[key.ID]
	if !ok {
		st = &keyState{}
		st.setLimits(g.limitsOf(key))
		g.states[key.ID] = st
	}
	return st
}

// prepare brings st up to date: limits changed in the store since, counters
// seeded on first use, the day rolled over. Callers hold st.mu.
func (g *Gate) prepare(ctx context.Context, st *keyState, key *Key, now time.Time) error {
	st.setLimits(g.limitsOf(key))
	day := dayOf(now)
	if g.reserver != nil {
		return nil // the store counts quota
	}
	if !st.loaded {
		today, total, err := g.store.UsageTotals(ctx, key.ID, day)
		if err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		st.today, st.total, st.day, st.loaded = today, total, day, true
	}
	if st.day != day {
		// Requests still running keep their reservation, counted against the
		// new day until they finish: a few seconds of caution at midnight.
		st.day, st.today = day, 0
	}
	return nil
}

// setLimits starts a fresh bucket for a per-minute limit that changed in
// the store since the key was last seen.
func (st *keyState) setLimits(l Limits) {
	if st.requests.max != l.RequestsPerMinute {
		st.requests = newWindow(l.RequestsPerMinute)
	}
	if st.images.max != l.ImagesPerMinute {
		st.images = newWindow(l.ImagesPerMinute)
	}
	st.limits = l
}

func (st *keyState) checkQuota(now time.Time, images int) error {
	if qerr := quotaCheck(now, images, st.limits.ImagesPerDay, st.limits.ImageQuota,
		st.today, st.total, st.reserved); qerr != nil {
		return qerr
	}
	return nil
}

// checkRate answers the longer of the two waits, so a client that obeys
// Retry-After gets through next time.
func (st *keyState) checkRate(now time.Time, images int) error {
	reqWait, _ := st.requests.wait(now, 1)
	imgWait, imgTooLarge := st.images.wait(now, images)
	if imgTooLarge {
		return st.rateError(now, LimitImages, st.images, images, 0, true)
	}
	switch {
	case imgWait > reqWait:
		return st.rateError(now, LimitImages, st.images, images, imgWait, false)
	case reqWait > 0:
		return st.rateError(now, LimitRequests, st.requests, 1, reqWait, false)
	}
	return nil
}

func (st *keyState) rateError(now time.Time, limit string, w window, requested int, wait time.Duration, tooLarge bool) error {
	remaining, _ := w.state(now)
	return &RateLimitError{Limit: limit, Max: w.max, Used: w.max - remaining, Requested: requested,
		RetryAfter: wait, TooLarge: tooLarge, Headers: st.headers(now)}
}

func (st *keyState) headers(now time.Time) RateHeaders {
	var h RateHeaders
	if !st.requests.unlimited() {
		h.LimitRequests = st.requests.max
		h.RemainingRequests, h.ResetRequests = st.requests.state(now)
	}
	if !st.images.unlimited() {
		h.LimitImages = st.images.max
		h.RemainingImages, h.ResetImages = st.images.state(now)
	}
	return h
}

// Finish records what the request used and settles its reservation: the
// images it did not produce go back to the quota. It writes even when ctx is
// cancelled (a cancelled request is recorded with what it used) and returns
// once the record is durable. A second call answers ErrFinished.
func (a *Admission) Finish(ctx context.Context, u Usage) error {
	a.mu.Lock()
	done := a.finished
	a.finished = true
	a.mu.Unlock()
	if done {
		return ErrFinished
	}
	model := u.Model
	if model == "" {
		model = a.model
	}
	rec := UsageRecord{
		KeyID: a.keyID, RequestID: u.RequestID, Model: model, Endpoint: u.Endpoint,
		At: a.at, Duration: a.gate.now().Sub(a.at),
		Images: u.Images, Pixels: u.Pixels, Steps: u.Steps, GPUSeconds: u.GPUSeconds,
		Cached: u.Cached, Status: u.Status, Inputs: u.Inputs, Family: u.Family, Generated: u.Generated, Reservation: a.reservation,
	}
	err := a.gate.store.RecordUsage(context.WithoutCancel(ctx), rec)
	// The images were made whether or not the record was written: count them.
	// With a QuotaReserver the record settled the reservation; a failed
	// record leaves it held until it expires, the cautious side.
	if st := a.state; st != nil && a.gate.reserver == nil {
		st.mu.Lock()
		st.reserved -= int64(a.images)
		if dayOf(a.at) == st.day {
			st.today += int64(u.Images)
		}
		st.total += int64(u.Images)
		st.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	return nil
}
