package cache

import (
	"context"
	"time"
)

// FlightLock lets instances that share a store coalesce identical requests
// across the network: one instance claims a key and computes; the others
// wait for its entry in the store. A Store that is shared (Redis)
// implements it; New finds it there.
type FlightLock interface {
	// Claim makes this caller the key's leader for ttl unless another
	// holds it (ok false). token identifies the claim to Extend and Release.
	Claim(ctx context.Context, k Key, ttl time.Duration) (token string, ok bool, err error)
	// Extend renews a held claim for ttl; false when it had lapsed.
	Extend(ctx context.Context, k Key, token string, ttl time.Duration) (bool, error)
	// Release gives a held claim up; a lapsed one is left alone.
	Release(ctx context.Context, k Key, token string) error
	// Claimed reports whether any instance holds the key's claim now.
	Claimed(ctx context.Context, k Key) (bool, error)
}

// Defaults of the cross-instance flights.
const (
	// DefaultClaimTTL is how long a claim lives unrenewed: a leader that
	// dies (SIGKILL, lost network) frees its key this long after.
	DefaultClaimTTL = 15 * time.Second
	// DefaultRemoteWait bounds a follower's wait for another instance's
	// leader; past it the follower computes on its own.
	DefaultRemoteWait = 2 * time.Minute
	// DefaultRemotePoll is how often a follower looks for the entry.
	DefaultRemotePoll = 100 * time.Millisecond
)

// remote is the flight's cross-instance part: what a flight goroutine does
// between its local miss and its compute.
type remote struct {
	lock                FlightLock
	ttl, wait, interval time.Duration
}

func (o Options) remote(store Store) *remote {
	lock, ok := store.(FlightLock)
	if !ok || o.LocalFlightsOnly {
		return nil
	}
	r := &remote{lock: lock, ttl: o.ClaimTTL, wait: o.RemoteWait, interval: o.RemotePoll}
	if r.ttl <= 0 {
		r.ttl = DefaultClaimTTL
	}
	if r.wait <= 0 {
		r.wait = DefaultRemoteWait
	}
	if r.interval <= 0 {
		r.interval = DefaultRemotePoll
	}
	return r
}

// lead ends when this instance may compute key: it returns the entry
// another instance stored while this one waited (found), or a release to
// call once the computed entry is stored (it holds the claim, renewed in
// the background, or nothing when the lock failed or the wait ran out:
// the cache then computes without one, as it would alone). An error is
// ctx's.
func (c *Cache) lead(ctx context.Context, key Key) (e Entry, found bool, release func(), err error) {
	r := c.remote
	deadline := time.Now().Add(r.wait)
	for followed := false; ; followed = true {
		token, ok, err := r.lock.Claim(ctx, key, r.ttl)
		if err != nil {
			if ctx.Err() != nil {
				return Entry{}, false, nil, ctx.Err()
			}
			c.storeError(ctx, "claim", key, err)
			return Entry{}, false, func() {}, nil
		}
		if ok {
			release := c.hold(ctx, key, token)
			// A leader we followed may have stored and released between
			// our last look and the claim.
			if followed {
				if e, ok := c.get(ctx, key); ok {
					release()
					return e, true, nil, nil
				}
			}
			return Entry{}, false, release, nil
		}
		e, found, gone, err := c.follow(ctx, key, deadline)
		switch {
		case err != nil:
			return Entry{}, false, nil, err
		case found:
			return e, true, nil, nil
		case !gone: // the wait ran out or the lock failed: compute anyway
			return Entry{}, false, func() {}, nil
		}
		// The leader let go without an entry (it failed, its clients left,
		// or it died): its error was its own, so claim and try here.
	}
}

// follow polls for the leader's entry until it is there (found), the claim
// is gone with no entry (gone), or the deadline passes (neither).
func (c *Cache) follow(ctx context.Context, key Key, deadline time.Time) (e Entry, found, gone bool, err error) {
	c.remoteWaits.Add(1)
	t := time.NewTicker(c.remote.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return Entry{}, false, false, ctx.Err()
		case <-t.C:
		}
		if e, ok := c.get(ctx, key); ok {
			return e, true, false, nil
		}
		claimed, err := c.remote.lock.Claimed(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return Entry{}, false, false, ctx.Err()
			}
			c.storeError(ctx, "claimed", key, err)
			return Entry{}, false, false, nil
		}
		if !claimed {
			return Entry{}, false, true, nil
		}
		if time.Now().After(deadline) {
			c.log.WarnContext(ctx, "cache: another instance's computation outlasted the wait; computing here too",
				"key", key.String(), "wait", c.remote.wait)
			return Entry{}, false, false, nil
		}
	}
}

// hold renews the claim every third of its TTL until the returned release
// runs, which gives the claim up.
func (c *Cache) hold(ctx context.Context, key Key, token string) func() {
	r := c.remote
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if ok, err := r.lock.Extend(ctx, key, token, r.ttl); err != nil || !ok {
					// Another instance may claim and compute too: a
					// duplicate, not a wrong answer.
					if err == nil && ctx.Err() == nil {
						c.log.WarnContext(ctx, "cache: flight claim lapsed", "key", key.String())
					}
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		// Give the claim up even when the flight's ctx is cancelled, so
		// followers need not wait out the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := r.lock.Release(rctx, key, token); err != nil {
			c.storeError(ctx, "release", key, err)
		}
	}
}
