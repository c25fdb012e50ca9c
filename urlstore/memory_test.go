package urlstore

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) get() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// store is what both implementations offer; the shared tests run on it.
type store interface {
	PutAll(ctx context.Context, datas [][]byte, contentType, ext string) ([]string, time.Time, error)
	Get(ctx context.Context, name string) (Image, bool, error)
	Stats() (int, int64)
	Close() error
}

var (
	_ store = (*Memory)(nil)
	_ store = (*Redis)(nil)
)

func put(t *testing.T, s store, data, contentType, ext string) (string, time.Time) {
	t.Helper()
	names, expires, err := s.PutAll(context.Background(), [][]byte{[]byte(data)}, contentType, ext)
	if err != nil {
		t.Fatal(err)
	}
	return names[0], expires
}

func get(t *testing.T, s store, name string) (Image, bool) {
	t.Helper()
	img, ok, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return img, ok
}

// testStoreBasics: names, round trip, byte budget, expiry. s holds at most
// 10 bytes, lives a minute, and reads clk.
func testStoreBasics(t *testing.T, s store, clk *clock) {
	start := clk.get()
	name, expires := put(t, s, "abcd", "image/png", "png")
	if !regexp.MustCompile(`^[0-9a-f]{32}\.png$`).MatchString(name) || !ValidName(name) {
		t.Errorf("name %q is not 128 random bits in hex", name)
	}
	if !expires.Equal(start.Add(time.Minute)) {
		t.Errorf("expires %v", expires)
	}
	clk.set(start.Add(time.Millisecond)) // Redis breaks expiry ties by name
	if other, _ := put(t, s, "x", "image/png", "png"); other == name {
		t.Error("two images got the same name")
	}
	img, ok := get(t, s, name)
	if !ok || string(img.Data) != "abcd" || img.ContentType != "image/png" {
		t.Fatalf("get: %v %+v", ok, img)
	}
	if left := img.Expires.Sub(start); left <= 0 || left > time.Minute {
		t.Errorf("image expires %v after it was stored, want within a minute", left)
	}
	if _, ok := get(t, s, "0123456789abcdef0123456789abcdef.png"); ok {
		t.Error("unknown name found")
	}

	// Over the byte budget the oldest go first.
	clk.set(start.Add(2 * time.Millisecond))
	third, _ := put(t, s, "123456", "image/jpeg", "jpeg")
	if _, ok := get(t, s, name); ok {
		t.Error("oldest image kept past the byte budget")
	}
	if _, ok := get(t, s, third); !ok {
		t.Error("newest image missing")
	}
	if n, b := s.Stats(); n != 2 || b != 7 {
		t.Errorf("stats %d images %d bytes, want 2 and 7", n, b)
	}
}

// testKeepsAResponseTogether: making room for a response's images evicts
// older images only, never a sibling of the same response.
func testKeepsAResponseTogether(t *testing.T, s store) {
	old, _ := put(t, s, "old", "image/png", "png")
	names, _, err := s.PutAll(context.Background(), [][]byte{[]byte("aaa"), []byte("bbb"), []byte("ccc")}, "image/png", "png")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := get(t, s, old); ok {
		t.Error("the older image was kept past the byte budget")
	}
	for i, n := range names {
		if _, ok := get(t, s, n); !ok {
			t.Errorf("image %d of the response was evicted by its own siblings", i)
		}
	}
}

func TestMemory(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var clk clock
	start := time.Unix(1800000000, 0)
	clk.set(start)
	s := NewMemory(time.Minute, 10, clk.get)
	defer s.Close()
	testStoreBasics(t, s, &clk)

	// Expired images vanish on read and on sweep.
	clk.set(start.Add(time.Minute + 2*time.Millisecond))
	names, _, _ := s.PutAll(context.Background(), nil, "image/png", "png")
	if len(names) != 0 {
		t.Errorf("an empty response got names %v", names)
	}
	s.sweep()
	if n, b := s.Stats(); n != 0 || b != 0 {
		t.Errorf("after sweep: %d images %d bytes", n, b)
	}
	if err := s.Close(); err != nil { // twice is fine
		t.Error(err)
	}
}

func TestMemorySweepsInBackground(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var clk clock
	clk.set(time.Unix(1800000000, 0))
	s := NewMemory(time.Millisecond, 1<<20, clk.get) // sweeps every second
	defer s.Close()
	put(t, s, "x", "image/png", "png")
	clk.set(time.Unix(1800000001, 0))
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := s.Stats(); n != 0; n, _ = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never removed the expired image")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemoryKeepsAResponseTogether(t *testing.T) {
	s := NewMemory(time.Minute, 10, time.Now)
	defer s.Close()
	testKeepsAResponseTogether(t, s)
}

func TestBadExtension(t *testing.T) {
	s := NewMemory(time.Minute, 10, time.Now)
	defer s.Close()
	for _, ext := range []string{"", "PNG", "png/../x", "verylongext"} {
		if _, _, err := s.PutAll(context.Background(), [][]byte{{1}}, "image/png", ext); err == nil {
			t.Errorf("extension %q accepted", ext)
		}
	}
}

func TestValidName(t *testing.T) {
	good := "0123456789abcdef0123456789abcdef.png"
	tests := map[string]bool{
		good:                                         true,
		"0123456789abcdef0123456789abcdef.webp":      true,
		"0123456789ABCDEF0123456789abcdef.png":       false,
		"0123456789abcdef0123456789abcde.png":        false,
		"0123456789abcdef0123456789abcdef":           false,
		"0123456789abcdef0123456789abcdef.":          false,
		"0123456789abcdef0123456789abcdef.p:ng":      false,
		"0123456789abcdef0123456789abcdef.pngpngpng": false,
		"index": false,
		"":      false,
	}
	for name, want := range tests {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
	if !ValidName(newName("jpeg")) {
		t.Error("a fresh name is not valid")
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"0123456789abcdef0123456789abcdef.png", "index", "", "x.png"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidName(name) && (len(name) < 34 || name[32] != '.') {
			t.Errorf("ValidName(%q) accepted a malformed name", name)
		}
	})
}
