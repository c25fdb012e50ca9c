package server

import (
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestImageStore(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var clock atomicTime
	start := time.Unix(1800000000, 0)
	clock.set(start)
	s := newImageStore(time.Minute, 10, clock.get)
	defer s.close()

	name, expires := s.put([]byte("abcd"), "image/png", "png")
	if !regexp.MustCompile(`^[0-9a-f]{32}\.png$`).MatchString(name) {
		t.Errorf("name %q is not 128 random bits in hex", name)
	}
	if !expires.Equal(start.Add(time.Minute)) {
		t.Errorf("expires %v", expires)
	}
	if other, _ := s.put([]byte("x"), "image/png", "png"); other == name {
		t.Error("two images got the same name")
	}
	img, ok := s.get(name)
	if !ok || string(img.data) != "abcd" || img.contentType != "image/png" {
		t.Fatalf("get: %v %+v", ok, img)
	}
	if _, ok := s.get("0123456789abcdef0123456789abcdef.png"); ok {
		t.Error("unknown name found")
	}

	// Over the byte budget the oldest go first.
	third, _ := s.put([]byte("123456"), "image/jpeg", "jpeg")
	if _, ok := s.get(name); ok {
		t.Error("oldest image kept past the byte budget")
	}
	if n, b := s.stats(); n != 2 || b != 7 {
		t.Errorf("stats %d images %d bytes, want 2 and 7", n, b)
	}

	// Expired images vanish on read and on sweep.
	clock.set(start.Add(time.Minute))
	if _, ok := s.get(third); ok {
		t.Error("expired image served")
	}
	s.sweep()
	if n, b := s.stats(); n != 0 || b != 0 {
		t.Errorf("after sweep: %d images %d bytes", n, b)
	}
	s.close() // twice is fine
}

func TestImageStoreSweepsInBackground(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var clock atomicTime
	clock.set(time.Unix(1800000000, 0))
	s := newImageStore(time.Millisecond, 1<<20, clock.get) // sweeps every second
	defer s.close()
	s.put([]byte("x"), "image/png", "png")
	clock.set(time.Unix(1800000001, 0))
	waitFor(t, "the sweeper", func() bool { n, _ := s.stats(); return n == 0 })
}

// Making room for a response's images evicts older images only, never a
// sibling of the same response.
func TestImageStoreKeepsAResponseTogether(t *testing.T) {
	s := newImageStore(time.Minute, 10, time.Now)
	defer s.close()
	old, _ := s.put([]byte("old"), "image/png", "png")
	names, _ := s.putAll([][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc")}, "image/png", "png")
	if _, ok := s.get(old); ok {
		t.Error("the older image was kept past the byte budget")
	}
	for i, n := range names {
		if _, ok := s.get(n); !ok {
			t.Errorf("image %d of the response was evicted by its own siblings", i)
		}
	}
}

// put stores data and returns its file name (hex token + "." + ext) and
// expiry.
func (s *imageStore) put(data []byte, contentType, ext string) (string, time.Time) {
	names, expires := s.putAll([][]byte{data}, contentType, ext)
	return names[0], expires
}
