package auth

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sdgate/sdgate/internal/testsvc"
)

var testPG *testsvc.Postgres

func TestMain(m *testing.M) {
	code := m.Run()
	if testPG != nil {
		testPG.Stop()
	}
	os.Exit(code)
}

var pgDBs atomic.Int64

// openTestPostgres opens a store on a fresh database of the package's server.
func openTestPostgres(t *testing.T) *PostgresStore {
	t.Helper()
	return openPostgresDSN(t, newTestPostgresDB(t))
}

// newTestPostgresDB makes a fresh database on the package's server and
// returns its DSN, for tests that open several stores (gateways) on it.
func newTestPostgresDB(t *testing.T) string {
	t.Helper()
	testsvc.SkipWithoutPostgres(t)
	ctx := context.Background()
	if testPG == nil {
		p, err := testsvc.StartPostgres()
		if err != nil {
			t.Fatal(err)
		}
		testPG = p
	}
	db := fmt.Sprintf("t%d", pgDBs.Add(1))
	c, err := pgx.Connect(ctx, testPG.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	return testPG.DSN(db)
}

func openPostgresDSN(t *testing.T, dsn string) *PostgresStore {
	t.Helper()
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresUsageIdempotent(t *testing.T) {
	s := openTestPostgres(t)
	ctx := context.Background()
	k := &Key{ID: "k1", Name: "a", Hint: "h", Hash: []byte("hash1"), CreatedAt: time.Now()}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := UsageRecord{KeyID: "k1", RequestID: "r1", At: at, Images: 3, Status: 200}
	for range 3 {
		if err := s.RecordUsage(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	today, total, err := s.UsageTotals(ctx, "k1", "2026-01-02")
	if err != nil {
		t.Fatal(err)
	}
	if today != 3 || total != 3 {
		t.Fatalf("totals = %d, %d; want 3, 3 (one record per request id)", today, total)
	}
	got, err := s.Key(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(at) {
		t.Fatalf("last used = %v, want %v", got.LastUsedAt, at)
	}
	if _, err := s.Key(ctx, "nope"); err != ErrKeyNotFound {
		t.Fatalf("missing key: %v", err)
	}
}
