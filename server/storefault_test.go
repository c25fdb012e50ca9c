package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
)

// faultyStore is the real SQLite store whose writes can be made to fail
// the way a full disk fails them: the probe and every usage record.
type faultyStore struct {
	*auth.SQLiteStore
	full        atomic.Bool // probe and records fail
	recordFails atomic.Bool // only records fail (the disk filled after the probe)
}

var errFull = errors.New("database or disk is full")

func (f *faultyStore) ProbeWrite(ctx context.Context) error {
	if f.full.Load() {
		return errFull
	}
	return f.SQLiteStore.ProbeWrite(ctx)
}

func (f *faultyStore) RecordUsage(ctx context.Context, recs ...auth.UsageRecord) error {
	if f.full.Load() || f.recordFails.Load() {
		return errFull
	}
	return f.SQLiteStore.RecordUsage(ctx, recs...)
}

func TestUnwritableStoreRefusesBeforeWork(t *testing.T) {
	sq, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	store := &faultyStore{SQLiteStore: sq}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	gate, err := auth.New(store, auth.Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	admin := newKey(t, gate, auth.KeySpec{Name: "admin", Admin: true})
	gen := newFakeGenerator()
	s, err := New(gen, Options{Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	if a := call(t, ts, "GET", "/readyz", "", ""); a.status != http.StatusOK {
		t.Fatalf("healthy readyz: %d", a.status)
	}
	store.full.Store(true)
	clock.Add(int64(2 * auth.DefaultProbeTTL))
	if a := call(t, ts, "GET", "/readyz", "", ""); a.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a full disk: %d, want 503", a.status)
	}
	a := call(t, ts, "POST", "/v1/images/generations", admin, genBody)
	if _, code, _ := errorOf(a); a.status != http.StatusServiceUnavailable || code != "usage_store_unavailable" || a.header.Get("Retry-After") != "5" {
		t.Fatalf("generation with a full disk: %d %s Retry-After %q, want 503 usage_store_unavailable 5", a.status, code, a.header.Get("Retry-After"))
	}
	if n := gen.calls.Load(); n != 0 {
		t.Fatalf("the generator ran %d times for requests that could not be metered", n)
	}

	// The disk fills after the probe, before the record: the images were
	// made but are never handed out.
	store.full.Store(false)
	clock.Add(int64(2 * auth.DefaultProbeTTL))
	store.recordFails.Store(true)
	a = call(t, ts, "POST", "/v1/images/generations", admin, genBody)
	if a.status < 500 || a.body["data"] != nil {
		t.Fatalf("record failed after the run: %d %v, want a 5xx without images", a.status, a.body)
	}
	store.recordFails.Store(false)

	clock.Add(int64(2 * auth.DefaultProbeTTL))
	if a := call(t, ts, "GET", "/readyz", "", ""); a.status != http.StatusOK {
		t.Fatalf("readyz after recovery: %d", a.status)
	}
	if a := call(t, ts, "POST", "/v1/images/generations", admin, genBody); a.status != http.StatusOK {
		t.Fatalf("generation after recovery: %d %v", a.status, a.body)
	}
}
