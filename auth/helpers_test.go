package auth

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the Gate's Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testStart is a fixed instant well inside a UTC day.
var testStart = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func openTestStore(t testing.TB) *SQLiteStore {
	t.Helper()
	s, err := OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// newTestGate is a Gate on a fresh store with a fake clock at testStart.
func newTestGate(t testing.TB) (*Gate, *SQLiteStore, *fakeClock) {
	t.Helper()
	s := openTestStore(t)
	clock := newFakeClock(testStart)
	g, err := New(s, Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("new gate: %v", err)
	}
	return g, s, clock
}

// mustCreate makes a key through g and returns its secret and record.
func mustCreate(t testing.TB, g *Gate, spec KeySpec) (string, *Key) {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test"
	}
	secret, k, err := g.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return secret, k
}
