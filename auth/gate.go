package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
}

// Gate authenticates requests, admits them against the key's limits and
// quotas, and meters what they used. It is safe for concurrent use.
type Gate struct {
	store    Store
	reserver QuotaReserver // store's, when it holds quota itself; nil means in-process counters
	now      func() time.Time
	cache    *keyCache

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
	return &Gate{store: store, reserver: reserver, now: now, cache: newKeyCache(ttl),
		states: map[string]*keyState{}, static: map[string]*Key{}}, nil
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
		return nil, fmt.Errorf("authenticate: %w", err)
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
	switch {
	case caller == nil && (keyID == "" || keyID == AllKeys):
		keyID = ""
	case caller == nil:
	case keyID == "" || keyID == caller.ID:
		keyID = caller.ID
	case !caller.Admin:
		return nil, ErrNotAdmin
	case keyID == AllKeys:
		keyID = ""
	}
	return g.store.UsageByDay(ctx, keyID, since)
}
