package cache

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// memoryItemOverhead is what the LRU spends per item besides the Entry:
// the key in the map and in the list element, the element's links and the
// map slot, with a margin. BenchmarkMemoryPerEntry measures the real
// figure (about 350 bytes per entry with Entry's own, against 381 counted).
const memoryItemOverhead = 192

// Memory is the default Store: an in-process LRU bounded by the bytes of
// its entries (not by their count, since one entry may be 50 KB and the
// next 10 MB). The least recently used entries go first.
type Memory struct {
	maxBytes int64

	mu        sync.Mutex
	lru       *simplelru.LRU[Key, Entry]
	bytes     int64
	evictions int64
	rejected  int64
}

var _ Store = (*Memory)(nil)

// NewMemory makes a Memory store holding at most maxBytes (as counted by
// Entry.Size plus a per-item overhead); DefaultMaxBytes is a sensible value.
func NewMemory(maxBytes int64) (*Memory, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("%w: memory cache bound %d bytes, want > 0", ErrBadOptions, maxBytes)
	}
	m := &Memory{maxBytes: maxBytes}
	// The count bound is effectively off: bytes decide. The callback runs
	// inside the LRU's methods, under m.mu, for every removal.
	lru, err := simplelru.NewLRU[Key, Entry](math.MaxInt, func(_ Key, e Entry) {
		m.bytes -= memorySize(e)
	})
	if err != nil {
		return nil, fmt.Errorf("memory cache: %w", err)
	}
	m.lru = lru
	return m, nil
}

func memorySize(e Entry) int64 { return e.Size() + memoryItemOverhead }

// Get returns the entry under k and marks it recently used.
func (m *Memory) Get(_ context.Context, k Key) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lru.Get(k)
	return e, ok, nil
}

// Add stores e under k, evicting least recently used entries until it
// fits. An entry larger than the whole bound is not stored (and evicts
// nothing); it counts as rejected.
func (m *Memory) Add(_ context.Context, k Key, e Entry) error {
	size := memorySize(e)
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.maxBytes {
		m.rejected++
		return nil
	}
	m.lru.Remove(k) // a replaced entry gives its bytes back first
	for m.bytes+size > m.maxBytes {
		if _, _, ok := m.lru.RemoveOldest(); !ok {
			break
		}
		m.evictions++
	}
	m.lru.Add(k, e)
	m.bytes += size
	return nil
}

// Stats reports the store's size and evictions.
func (m *Memory) Stats() StoreStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return StoreStats{
		Entries:   int64(m.lru.Len()),
		Bytes:     m.bytes,
		MaxBytes:  m.maxBytes,
		Evictions: m.evictions,
		Rejected:  m.rejected,
	}
}
