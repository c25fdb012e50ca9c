package auth

import (
	"slices"
	"sync"
	"time"
)

// DefaultKeyCacheTTL is how long Authenticate trusts a key it looked up
// before asking the store again: a key revoked by another process (the
// keys CLI) stops working within this time; Gate.RevokeKey acts at once.
const DefaultKeyCacheTTL = time.Second

// keyCache remembers keys found in the store by hash. Only keys that exist
// are kept, so its size is bounded by the store's, whatever clients send.
type keyCache struct {
	ttl     time.Duration // <= 0: off
	mu      sync.RWMutex
	entries map[string]cachedKey // by string(hash)
}

type cachedKey struct {
	key   Key
	until time.Time
}

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, entries: map[string]cachedKey{}}
}

func (c *keyCache) get(hash []byte, now time.Time) (*Key, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[string(hash)]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	k := e.key // a copy: callers may not change the cache
	k.Hash, k.Models = slices.Clone(k.Hash), slices.Clone(k.Models)
	return &k, true
}

func (c *keyCache) put(k *Key, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	c.entries[string(k.Hash)] = cachedKey{key: *k, until: now.Add(c.ttl)}
	c.mu.Unlock()
}

func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.key.ID == id {
			delete(c.entries, h)
		}
	}
}
