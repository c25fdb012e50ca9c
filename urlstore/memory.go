package urlstore

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory keeps images in process memory until they expire (swept in the
// background) or the byte budget pushes the oldest out.
type Memory struct {
	ttl      time.Duration
	maxBytes int64
	now      func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element // of *memImage, oldest at the front
	order *list.List
	bytes int64

	stop chan struct{}
	done chan struct{}
}

type memImage struct {
	name string
	img  Image
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
		ttl: ttl, maxBytes: maxBytes, now: now,
		items: make(map[string]*list.Element), order: list.New(),
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, data := range datas {
		names[i] = newName(ext)
		s.items[names[i]] = s.order.PushBack(&memImage{name: names[i],
			img: Image{Data: data, ContentType: contentType, Expires: expires}})
		s.bytes += int64(len(data))
	}
	for s.bytes > s.maxBytes && s.order.Len() > len(datas) {
		s.removeLocked(s.order.Front())
	}
	return names, expires, nil
}

// Get returns a live image.
func (s *Memory) Get(_ context.Context, name string) (Image, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[name]
	if !ok {
		return Image{}, false, nil
	}
	img := e.Value.(*memImage).img
	if !s.now().Before(img.Expires) {
		s.removeLocked(e)
		return Image{}, false, nil
	}
	return img, true, nil
}

func (s *Memory) removeLocked(e *list.Element) {
	m := s.order.Remove(e).(*memImage)
	delete(s.items, m.name)
	s.bytes -= int64(len(m.img.Data))
}

// sweep drops expired images. All share one TTL, so expiry follows
// insertion order and the sweep stops at the first live one.
func (s *Memory) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		if now.Before(e.Value.(*memImage).img.Expires) {
			return
		}
		s.removeLocked(e)
	}
}

// Stats reports how many images and bytes are held.
func (s *Memory) Stats() (count int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len(), s.bytes
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
