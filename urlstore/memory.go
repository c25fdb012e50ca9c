package urlstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory keeps images in process memory until they expire (swept in the
// background) or the byte budget pushes the oldest out.
//
// Every image lives as long as the others (one TTL), so expiry and
// eviction both follow insertion order: a FIFO of names is the only order
// kept. An image Get finds expired leaves the map at once and its name in
// the FIFO, skipped when it reaches the front. (Every url-format answer,
// cache hits included, stores its images: this runs once per hit.)
type Memory struct {
	ttl      time.Duration
	maxBytes int64
	now      func() time.Time

	mu    sync.Mutex
	items map[string]Image
	order []string // names, oldest first from head; some may have left items
	head  int
	bytes int64

	stop chan struct{}
	done chan struct{}
}

// NewMemory starts the sweeper; Close stops it. ttl and maxBytes <= 0 mean
// their defaults; nil now means time.Now.
func NewMemory(ttl time.Duration, maxBytes int64, now func() time.Time) *Memory {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if now == nil {
		now = time.Now
	}
	s := &Memory{
		ttl: ttl, maxBytes: maxBytes, now: now, items: make(map[string]Image),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.sweepEvery(min(max(ttl/4, time.Second), time.Minute))
	return s
}

// PutAll stores the images of one response together and returns their
// names and common expiry: making room evicts only older images, never a
// sibling the client has yet to fetch.
func (s *Memory) PutAll(_ context.Context, datas [][]byte, contentType, ext string) ([]string, time.Time, error) {
	if !validExt(ext) {
		return nil, time.Time{}, fmt.Errorf("url store: bad extension %q", ext)
	}
	expires := s.now().Add(s.ttl)
	names := make([]string, len(datas))
	for i := range names {
		names[i] = newName(ext) // outside the lock: crypto/rand
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, data := range datas {
		s.items[names[i]] = Image{Data: data, ContentType: contentType, Expires: expires}
		s.order = append(s.order, names[i])
		s.bytes += int64(len(data))
	}
	for s.bytes > s.maxBytes && len(s.items) > len(datas) {
		s.dropOldestLocked()
	}
	return names, expires, nil
}

// Get returns a live image.
func (s *Memory) Get(_ context.Context, name string) (Image, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.items[name]
	if !ok {
		return Image{}, false, nil
	}
	if !s.now().Before(img.Expires) {
		s.removeLocked(name, img)
		return Image{}, false, nil
	}
	return img, true, nil
}

func (s *Memory) removeLocked(name string, img Image) {
	delete(s.items, name)
	s.bytes -= int64(len(img.Data))
}

// oldestLocked is the oldest image still held, its name first popping the
// names of images that already left; ok is false when none is held.
func (s *Memory) oldestLocked() (name string, img Image, ok bool) {
	for s.head < len(s.order) {
		name = s.order[s.head]
		if img, ok = s.items[name]; ok {
			return name, img, true
		}
		s.popLocked()
	}
	return "", Image{}, false
}

// dropOldestLocked removes the oldest image held.
func (s *Memory) dropOldestLocked() {
	if name, img, ok := s.oldestLocked(); ok {
		s.removeLocked(name, img)
		s.popLocked()
	}
}

// popLocked drops the front name, and compacts the FIFO once its dead
// front outweighs the live part, so it stays within twice the names held.
func (s *Memory) popLocked() {
	s.order[s.head] = ""
	s.head++
	if s.head == len(s.order) {
		s.order, s.head = s.order[:0], 0
	} else if s.head > len(s.order)/2 {
		s.order, s.head = append(s.order[:0], s.order[s.head:]...), 0
	}
}

// sweep drops expired images. All share one TTL, so expiry follows
// insertion order and the sweep stops at the first live one.
func (s *Memory) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		name, img, ok := s.oldestLocked()
		if !ok || now.Before(img.Expires) {
			return
		}
		s.removeLocked(name, img)
		s.popLocked()
	}
}

// Stats reports how many images and bytes are held.
func (s *Memory) Stats() (count int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items), s.bytes
}

func (s *Memory) sweepEvery(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.sweep()
		case <-s.stop:
			return
		}
	}
}

// Close stops the sweeper; it is safe to call more than once.
func (s *Memory) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return nil
}
