package cache

import (
	"context"
	"errors"
)

// ErrBadOptions: a constructor refused its options.
var ErrBadOptions = errors.New("bad cache options")

// Store keeps entries by key: Memory in-process (the default) or Redis,
// shared by several instances. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the entry under k; ok is false on a miss. An error means
	// the store could not answer (the Cache then computes as on a miss).
	Get(ctx context.Context, k Key) (e Entry, ok bool, err error)
	// Add stores e under k, replacing what was there. A store may decline
	// an entry (too large) without an error.
	Add(ctx context.Context, k Key, e Entry) error
	// Stats reports what the store knows about itself without blocking.
	Stats() StoreStats
}

// StoreStats describe a store's contents. A shared store that cannot tell
// cheaply (Redis: the server evicts and expires on its own) reports zeros
// for what it does not know.
type StoreStats struct {
	Entries   int64 // entries held
	Bytes     int64 // bytes held, as counted against MaxBytes
	MaxBytes  int64 // the bound; 0 when the store has none of its own
	Evictions int64 // entries removed to make room
	Rejected  int64 // entries not stored for being larger than the bound
}
