package auth

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// flakyStore is a SQLite store whose write probe fails while down is set.
type flakyStore struct {
	*SQLiteStore
	down   atomic.Bool
	probes atomic.Int32
}

var errDiskFull = errors.New("database or disk is full")

func (f *flakyStore) ProbeWrite(ctx context.Context) error {
	f.probes.Add(1)
	if f.down.Load() {
		return errDiskFull
	}
	return f.SQLiteStore.ProbeWrite(ctx)
}

func TestWritableProbesAndRecovers(t *testing.T) {
	ctx := context.Background()
	sq, err := OpenDataDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	store := &flakyStore{SQLiteStore: sq}
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	g, err := New(store, Options{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Writable(ctx); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	store.down.Store(true)
	if err := g.Writable(ctx); err != nil {
		t.Fatalf("within the probe's TTL the last answer stands: %v", err)
	}
	now.Add(int64(DefaultProbeTTL))
	if err := g.Writable(ctx); !errors.Is(err, ErrStoreUnwritable) || !errors.Is(err, errDiskFull) {
		t.Fatalf("full disk: %v, want ErrStoreUnwritable wrapping the cause", err)
	}
	for range 100 {
		g.Writable(ctx)
	}
	if n := store.probes.Load(); n != 2 {
		t.Fatalf("%d probes, want 2: a burst reuses the answer", n)
	}
	store.down.Store(false)
	now.Add(int64(DefaultProbeTTL))
	if err := g.Writable(ctx); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestProbeWriteReadOnly opens the store's file read-only, as a read-only
// mount would leave it: the probe fails like a usage record would.
func TestProbeWriteReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sq, err := OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.ProbeWrite(ctx); err != nil {
		t.Fatalf("writable store: %v", err)
	}
	sq.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	ro := &SQLiteStore{db: db}
	defer db.Close()
	if err := ro.ProbeWrite(ctx); err == nil {
		t.Fatal("read-only database: probe succeeded")
	}
	if err := sq.ProbeWrite(ctx); err == nil {
		t.Fatal("closed store: probe succeeded")
	}
}
