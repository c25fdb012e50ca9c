package urlstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/testsvc"
)

func newTestRedis(t *testing.T, opts RedisOptions) *Redis {
	t.Helper()
	r, err := NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedis(t *testing.T) {
	addr := testsvc.StartRedis(t)
	var clk clock
	clk.set(time.Now())
	testStoreBasics(t, newTestRedis(t, RedisOptions{Addr: addr, TTL: time.Minute, MaxBytes: 10, Now: clk.get}), &clk)
}

func TestRedisKeepsAResponseTogether(t *testing.T) {
	addr := testsvc.StartRedis(t)
	testKeepsAResponseTogether(t, newTestRedis(t, RedisOptions{Addr: addr, TTL: time.Minute, MaxBytes: 10}))
}

// A URL minted through one store is served by another on the same server
// (another gateway), until Redis expires it.
func TestRedisSharedAndExpires(t *testing.T) {
	addr := testsvc.StartRedis(t)
	a := newTestRedis(t, RedisOptions{Addr: addr, TTL: 300 * time.Millisecond})
	b := newTestRedis(t, RedisOptions{Addr: addr, TTL: 300 * time.Millisecond})
	name, _ := put(t, a, "\x89PNG\x00binary\xff", "image/png", "png")
	img, ok := get(t, b, name)
	if !ok || string(img.Data) != "\x89PNG\x00binary\xff" || img.ContentType != "image/png" {
		t.Fatalf("other gateway: %v %+v", ok, img)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := get(t, b, name); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("image outlived its TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The index forgets it on the next put, so the byte count stays true.
	put(t, a, "yz", "image/png", "png")
	if n, bytes := a.Stats(); n != 1 || bytes != 2 {
		t.Errorf("stats after expiry: %d images %d bytes, want 1 and 2", n, bytes)
	}
}

// Gateways storing at once never push the total over MaxBytes.
func TestRedisBoundUnderConcurrency(t *testing.T) {
	addr := testsvc.StartRedis(t)
	const maxBytes = 1000
	var wg sync.WaitGroup
	for g := range 4 {
		s := newTestRedis(t, RedisOptions{Addr: addr, MaxBytes: maxBytes})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, _, err := s.PutAll(context.Background(), [][]byte{[]byte(strings.Repeat("x", 30+g+i))}, "image/png", "png"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s := newTestRedis(t, RedisOptions{Addr: addr, MaxBytes: maxBytes})
	put(t, s, "z", "image/png", "png")
	if _, bytes := s.Stats(); bytes > maxBytes || bytes < maxBytes-60 {
		t.Errorf("bytes held %d, want at most %d and close to it", bytes, maxBytes)
	}
}

func TestRedisRefusesOversized(t *testing.T) {
	addr := testsvc.StartRedis(t)
	s := newTestRedis(t, RedisOptions{Addr: addr, MaxBytes: 10, MaxImageBytes: 4})
	if _, _, err := s.PutAll(context.Background(), [][]byte{[]byte("12345")}, "image/png", "png"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized image: err %v, want ErrTooLarge", err)
	}
	if _, _, err := s.PutAll(context.Background(), [][]byte{[]byte("1234"), []byte("1234"), []byte("1234")}, "image/png", "png"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized response: err %v, want ErrTooLarge", err)
	}
	if _, ok := get(t, s, "../../etc"); ok {
		t.Error("malformed name found")
	}
}

func TestRedisDown(t *testing.T) {
	s, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.PutAll(context.Background(), [][]byte{{1}}, "image/png", "png"); err == nil {
		t.Error("put on an unreachable server succeeded")
	}
	if _, _, err := s.Get(context.Background(), newName("png")); err == nil {
		t.Error("get on an unreachable server succeeded")
	}
}

func TestNewRedisOptions(t *testing.T) {
	for name, opts := range map[string]RedisOptions{
		"neither":      {},
		"both":         {Addr: "a:1", URL: "redis://a:1"},
		"bad URL":      {URL: "http://x"},
		"negative TTL": {Addr: "a:1", TTL: -1},
		"tiny TTL":     {Addr: "a:1", TTL: time.Microsecond},
		"negative max": {Addr: "a:1", MaxBytes: -1},
	} {
		if _, err := NewRedis(opts); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: err %v, want ErrBadOptions", name, err)
		}
	}
}
