package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AllKeys asks Gate.Usage for every key's usage (admin keys only).
const AllKeys = "*"

// Options are the Gate's optional knobs.
type Options struct {
	// Now is the clock; nil means time.Now. Tests pass a fake one.
	Now func() time.Time
	// KeyCacheTTL: how long a key found in the store is trusted without
	// asking again; 0 means DefaultKeyCacheTTL, negative turns the cache off.
	KeyCacheTTL time.Duration
	// RateLimiter shares the per-minute limits between gateways (a
	// RedisRateLimiter); nil keeps them in this process.
	RateLimiter RateLimiter
	// RateLimitFailClosed: when the RateLimiter cannot answer, refuse the
	// request (ErrRateLimiterUnavailable, a 503) instead of the default,
	// which falls back to this process's own buckets and logs it.
	RateLimitFailClosed bool
	// Logger receives the rate limiter's failures (default: discard).
	Logger *slog.Logger
	// DefaultLimits are the per-minute limits of a key that sets none of
	// its own (RequestsPerMinute and ImagesPerMinute; the daily and
	// lifetime quotas stay per key). A key's own value wins, field by
	// field. The zero value leaves such keys unlimited and without
	// rate-limit headers; cmd/sdgate passes DefaultRequestsPerMinute and
	// DefaultImagesPerMinute unless --no-limits.
	DefaultLimits Limits
}

// The server-wide defaults cmd/sdgate applies: generous for one person or
// a script, enough to stop one key from taking the GPU all day. OpenAI's
// clients read the x-ratelimit-* headers these produce on every answer.
const (
	DefaultRequestsPerMinute = 300
	DefaultImagesPerMinute   = 60
)

// Gate authenticates requests, admits them against the key's limits and
// quotas, and meters what they used. It is safe for concurrent use.
type Gate struct {
	store    Store
	reserver QuotaReserver // store's, when it holds quota itself; nil means in-process counters
	limiter  RateLimiter   // shared per-minute limits; nil means in-process buckets
	failShut bool          // refuse when limiter fails, rather than fall back
	log      *slog.Logger
	lastLog  atomic.Int64 // unix ns of the last limiter failure logged
	now      func() time.Time
	cache    *keyCache
	defaults Limits // per-minute limits of keys without their own

	mu     sync.Mutex
	states map[string]*keyState // per key id: limiters and quota counters

	revokeMu sync.Mutex // serialises RevokeKeyKeepingAdmin's check and revoke

	probeMu  sync.Mutex // guards the last write probe (writable.go)
	probedAt time.Time
	probeErr error

	staticMu sync.RWMutex
	static   map[string]*Key // by string(hash): keys from SDGATE_API_KEYS
}

// New makes a Gate over store. The caller keeps ownership of store.
func New(store Store, opts Options) (*Gate, error) {
	if store == nil {
		return nil, errors.New("auth: nil store")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ttl := opts.KeyCacheTTL
	if ttl == 0 {
		ttl = DefaultKeyCacheTTL
	}
	reserver, _ := store.(QuotaReserver)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defaults := Limits{RequestsPerMinute: max(0, opts.DefaultLimits.RequestsPerMinute),
		ImagesPerMinute: max(0, opts.DefaultLimits.ImagesPerMinute)}
	return &Gate{store: store, reserver: reserver, limiter: opts.RateLimiter, failShut: opts.RateLimitFailClosed,
		log: log, now: now, cache: newKeyCache(ttl), defaults: defaults, states: map[string]*keyState{}, static: map[string]*Key{}}, nil
}

// DefaultLimits are the per-minute limits keys without their own get.
func (g *Gate) DefaultLimits() Limits { return g.defaults }

// limitsOf is what applies to key: its own limits, the per-minute ones
// filled from the server defaults where it sets none.
func (g *Gate) limitsOf(key *Key) Limits {
	l := key.Limits
	if l.RequestsPerMinute == 0 {
		l.RequestsPerMinute = g.defaults.RequestsPerMinute
	}
	if l.ImagesPerMinute == 0 {
		l.ImagesPerMinute = g.defaults.ImagesPerMinute
	}
	return l
}

// Authenticate finds the key a request presents, in an Authorization: Bearer
// header or (Azure-style clients) an api-key header; Bearer wins when both
// are there. Errors are *KeyError unless the store failed.
func (g *Gate) Authenticate(ctx context.Context, authorization, apiKey string) (*Key, error) {
	secret, ok := bearerToken(authorization)
	if !ok {
		secret = strings.TrimSpace(apiKey)
	}
	if secret == "" {
		return nil, &KeyError{Reason: ErrMissingKey}
	}
	masked := Mask(secret)
	if len(secret) > maxSecretLen {
		return nil, &KeyError{Reason: ErrInvalidKey, Masked: masked}
	}
	hash := HashSecret(secret)
	now := g.now()
	k, err := g.lookup(ctx, hash, now)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, &KeyError{Reason: ErrInvalidKey, Masked: masked}
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w: %w", ErrKeyStoreUnavailable, err)
	}
	// The lookup found the hash; confirm it in constant time all the same, so
	// a store that matched loosely (a prefix index, say) cannot let a key in.
	if !hashesEqual(k.Hash, hash) {
		return nil, &KeyError{Reason: ErrInvalidKey, Masked: masked}
	}
	switch {
	case k.Revoked():
		return nil, &KeyError{Reason: ErrRevoked, Masked: masked}
	case k.Expired(now):
		return nil, &KeyError{Reason: ErrExpired, Masked: masked, ExpiredAt: k.ExpiresAt}
	}
	return k, nil
}

// lookup finds a key by hash: static keys, then the cache, then the store.
func (g *Gate) lookup(ctx context.Context, hash []byte, now time.Time) (*Key, error) {
	if k := g.staticKey(hash); k != nil {
		return k, nil
	}
	if k, ok := g.cache.get(hash, now); ok {
		return k, nil
	}
	k, err := g.store.KeyByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	g.cache.put(k, now)
	return k, nil
}

// bearerToken takes the token out of "Bearer TOKEN"; the scheme is
// case-insensitive (RFC 9110). Other schemes are not ours: ok is false.
func bearerToken(authorization string) (token string, ok bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// RequireAdmin answers ErrNotAdmin unless key is an admin key. Without auth
// (nil key) nobody is admin: admin endpoints need auth switched on.
func RequireAdmin(key *Key) error {
	if key == nil || !key.Admin {
		return ErrNotAdmin
	}
	return nil
}

// CreateKey makes a key in s and returns its secret, which exists nowhere
// else: show it once.
func CreateKey(ctx context.Context, s Store, spec KeySpec) (secret string, key *Key, err error) {
	return createKey(ctx, s, spec, time.Now())
}

func createKey(ctx context.Context, s Store, spec KeySpec, now time.Time) (string, *Key, error) {
	if err := spec.validate(now); err != nil {
		return "", nil, err
	}
	secret := newSecret()
	k := &Key{
		ID:        newID(),
		Name:      strings.TrimSpace(spec.Name),
		Hint:      Mask(secret),
		Hash:      HashSecret(secret),
		CreatedAt: now.UTC().Truncate(time.Millisecond),
		ExpiresAt: spec.ExpiresAt.UTC().Truncate(time.Millisecond),
		Limits:    spec.Limits,
		Models:    spec.Models,
		Admin:     spec.Admin,
	}
	if err := s.CreateKey(ctx, k); err != nil {
		return "", nil, err
	}
	return secret, k, nil
}

// CreateKey makes a key (admin endpoint); see the package-level CreateKey.
func (g *Gate) CreateKey(ctx context.Context, spec KeySpec) (secret string, key *Key, err error) {
	return createKey(ctx, g.store, spec, g.now())
}

// ListKeys returns the static keys, then the store's, oldest first.
func (g *Gate) ListKeys(ctx context.Context) ([]Key, error) {
	keys := g.staticKeys()
	stored, err := g.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	return append(keys, stored...), nil
}

// RevokeKey revokes a stored key; static keys answer ErrStaticKey.
func (g *Gate) RevokeKey(ctx context.Context, id string) error {
	for _, k := range g.staticKeys() {
		if k.ID == id {
			return fmt.Errorf("revoke key %s: %w: remove it from the variable", id, ErrStaticKey)
		}
	}
	if err := g.store.RevokeKey(ctx, id, g.now()); err != nil {
		return err
	}
	g.cache.forget(id)
	return nil
}

// CountKeys counts the keys that can authenticate now, static ones included:
// serve refuses to start with none unless auth is off.
func (g *Gate) CountKeys(ctx context.Context) (int, error) {
	n, err := g.store.CountActiveKeys(ctx, g.now())
	if err != nil {
		return 0, err
	}
	return n + len(g.staticKeys()), nil
}

// Usage is GET /v1/usage: caller's usage per day since since. keyID "" is
// the caller's own key; another key id, or AllKeys, needs an admin caller.
// Without auth (nil caller) every key's usage is readable.
func (g *Gate) Usage(ctx context.Context, caller *Key, keyID string, since time.Time) ([]DayUsage, error) {
	id, err := usageScope(caller, keyID)
	if err != nil {
		return nil, err
	}
	return g.store.UsageByDay(ctx, id, since)
}

// UsageByModel is Usage split by model too.
func (g *Gate) UsageByModel(ctx context.Context, caller *Key, keyID string, since time.Time) ([]DayUsage, error) {
	id, err := usageScope(caller, keyID)
	if err != nil {
		return nil, err
	}
	return g.store.UsageByModel(ctx, id, since)
}

// RecentUsage is the newest limit usage records Usage's rules let caller read.
func (g *Gate) RecentUsage(ctx context.Context, caller *Key, keyID string, limit int) ([]UsageRecord, error) {
	id, err := usageScope(caller, keyID)
	if err != nil {
		return nil, err
	}
	return g.store.RecentUsage(ctx, id, limit)
}

// usageScope is the key id whose usage caller may read for keyID ("" =
// every key's).
func usageScope(caller *Key, keyID string) (string, error) {
	switch {
	case caller == nil && (keyID == "" || keyID == AllKeys):
		return "", nil
	case caller == nil:
		return keyID, nil
	case keyID == "" || keyID == caller.ID:
		return caller.ID, nil
	case !caller.Admin:
		return "", ErrNotAdmin
	case keyID == AllKeys:
		return "", nil
	}
	return keyID, nil
}
