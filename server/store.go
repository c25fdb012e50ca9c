package server

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// imageStore keeps response_format=url images in memory until they expire
// (swept in the background) or the byte budget pushes the oldest out.
// Names carry 128 random bits: knowing one is the permission to fetch it.
type imageStore struct {
	ttl      time.Duration
	maxBytes int64
	now      func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element // of *storedImage, oldest at the front
	order *list.List
	bytes int64

	stop chan struct{}
	done chan struct{}
}

type storedImage struct {
	name        string
	data        []byte
	contentType string
	expires     time.Time
}

// newImageStore starts the sweeper; close stops it.
func newImageStore(ttl time.Duration, maxBytes int64, now func() time.Time) *imageStore {
	s := &imageStore{
		ttl: ttl, maxBytes: maxBytes, now: now,
		items: make(map[string]*list.Element), order: list.New(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.sweepEvery(min(max(ttl/4, time.Second), time.Minute))
	return s
}

// putAll stores the images of one response together: making room evicts
// only older images, never a sibling the client has yet to fetch.
func (s *imageStore) putAll(datas [][]byte, contentType, ext string) ([]string, time.Time) {
	expires := s.now().Add(s.ttl)
	names := make([]string, len(datas))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, data := range datas {
		var token [16]byte
		rand.Read(token[:]) // never fails: crypto/rand crashes the program instead
		names[i] = hex.EncodeToString(token[:]) + "." + ext
		s.items[names[i]] = s.order.PushBack(&storedImage{name: names[i], data: data, contentType: contentType, expires: expires})
		s.bytes += int64(len(data))
	}
	for s.bytes > s.maxBytes && s.order.Len() > len(datas) {
		s.removeLocked(s.order.Front())
	}
	return names, expires
}

// get returns a live image.
func (s *imageStore) get(name string) (*storedImage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[name]
	if !ok {
		return nil, false
	}
	img := e.Value.(*storedImage)
	if !s.now().Before(img.expires) {
		s.removeLocked(e)
		return nil, false
	}
	return img, true
}

func (s *imageStore) removeLocked(e *list.Element) {
	img := s.order.Remove(e).(*storedImage)
	delete(s.items, img.name)
	s.bytes -= int64(len(img.data))
}

// sweep drops expired images. All share one TTL, so expiry follows
// insertion order and the sweep stops at the first live one.
func (s *imageStore) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		if now.Before(e.Value.(*storedImage).expires) {
			return
		}
		s.removeLocked(e)
	}
}

// stats reports how many images and bytes are held.
func (s *imageStore) stats() (count int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len(), s.bytes
}

func (s *imageStore) sweepEvery(interval time.Duration) {
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

// close stops the sweeper; it is safe to call more than once.
func (s *imageStore) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
