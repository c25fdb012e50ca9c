package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// newPgGates opens n stores on one fresh database, a Gate on each: n
// gateways' worth, sharing nothing but PostgreSQL.
func newPgGates(t *testing.T, n int) ([]*Gate, []*PostgresStore) {
	t.Helper()
	dsn := newTestPostgresDB(t)
	clock := newFakeClock(testStart)
	gates := make([]*Gate, n)
	stores := make([]*PostgresStore, n)
	for i := range n {
		stores[i] = openPostgresDSN(t, dsn)
		g, err := New(stores[i], Options{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		gates[i] = g
	}
	return gates, stores
}

func TestPostgresQuotaAcrossGateways(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		quota  string
	}{
		{"total", Limits{ImageQuota: 1}, QuotaTotal},
		{"daily", Limits{ImagesPerDay: 1}, QuotaDaily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gates, stores := newPgGates(t, 8)
			ctx := context.Background()
			_, key := mustCreate(t, gates[0], KeySpec{Limits: tc.limits})
			const requests = 64
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				admitted []*Admission
				refused  int
				other    []error
			)
			start := make(chan struct{})
			for i := range requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					a, err := gates[i%len(gates)].Admit(ctx, key, "", 1)
					mu.Lock()
					defer mu.Unlock()
					var qe *QuotaError
					switch {
					case err == nil:
						admitted = append(admitted, a)
					case errors.As(err, &qe) && qe.Quota == tc.quota:
						refused++
					default:
						other = append(other, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(other) > 0 {
				t.Fatalf("unexpected errors: %v", other)
			}
			if len(admitted) != 1 || refused != requests-1 {
				t.Fatalf("admitted %d, refused %d; want 1, %d", len(admitted), refused, requests-1)
			}
			if err := admitted[0].Finish(ctx, Usage{RequestID: "r1", Images: 1, Status: 200}); err != nil {
				t.Fatal(err)
			}
			for i, s := range stores {
				today, total, err := s.UsageTotals(ctx, key.ID, dayOf(testStart))
				if err != nil || today != 1 || total != 1 {
					t.Fatalf("store %d totals = %d, %d, %v; want 1, 1", i, today, total, err)
				}
			}
			// Settled, not reserved: the used image still counts, once.
			_, err := gates[5].Admit(ctx, key, "", 1)
			var qe *QuotaError
			if !errors.As(err, &qe) || qe.Used != 1 {
				t.Fatalf("after finish: %v; want a quota error with used 1", err)
			}
			if n := pgReservations(t, stores[0]); n != 0 {
				t.Fatalf("%d reservations left after finish", n)
			}
		})
	}
}

func TestPostgresQuotaReleasedOnFailure(t *testing.T) {
	gates, stores := newPgGates(t, 2)
	ctx := context.Background()
	_, key := mustCreate(t, gates[0], KeySpec{Limits: Limits{ImagesPerDay: 2}})
	a, err := gates[0].Admit(ctx, key, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gates[1].Admit(ctx, key, "", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("second admit while reserved: %v; want quota exceeded", err)
	}
	// The request failed and made nothing: its images go back to the quota.
	if err := a.Finish(ctx, Usage{RequestID: "failed", Images: 0, Status: 500}); err != nil {
		t.Fatal(err)
	}
	b, err := gates[1].Admit(ctx, key, "", 2)
	if err != nil {
		t.Fatalf("admit after a failed request: %v", err)
	}
	// A partial result: one of two images made, one goes back.
	if err := b.Finish(ctx, Usage{RequestID: "partial", Images: 1, Status: 200}); err != nil {
		t.Fatal(err)
	}
	if _, err := gates[0].Admit(ctx, key, "", 2); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("admit 2 with 1 left: %v; want quota exceeded", err)
	}
	c, err := gates[0].Admit(ctx, key, "", 1)
	if err != nil {
		t.Fatalf("admit 1 with 1 left: %v", err)
	}
	// A retried record of the same request is metered once, quota included.
	for range 2 {
		if err := stores[0].RecordUsage(ctx, UsageRecord{KeyID: key.ID, RequestID: "partial", At: testStart, Images: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Finish(ctx, Usage{RequestID: "last", Images: 1, Status: 200}); err != nil {
		t.Fatal(err)
	}
	var used int64
	if err := stores[1].pool.QueryRow(ctx, `SELECT images FROM quota_used WHERE key_id = $1`, key.ID).Scan(&used); err != nil || used != 2 {
		t.Fatalf("quota_used = %d, %v; want 2", used, err)
	}
}

func TestPostgresQuotaReleasedOnRateLimit(t *testing.T) {
	gates, stores := newPgGates(t, 1)
	ctx := context.Background()
	_, key := mustCreate(t, gates[0], KeySpec{Limits: Limits{ImagesPerDay: 5, RequestsPerMinute: 1}})
	if _, err := gates[0].Admit(ctx, key, "", 1); err != nil {
		t.Fatal(err)
	}
	var rle *RateLimitError
	if _, err := gates[0].Admit(ctx, key, "", 1); !errors.As(err, &rle) {
		t.Fatalf("second admit: %v; want rate limited", err)
	}
	if n := pgReservations(t, stores[0]); n != 1 {
		t.Fatalf("%d reservations; want 1 (the rate-limited request's released)", n)
	}
}

func TestPostgresQuotaReservationExpires(t *testing.T) {
	gates, stores := newPgGates(t, 2)
	ctx := context.Background()
	for _, s := range stores {
		s.SetReservationTTL(200 * time.Millisecond)
	}
	_, key := mustCreate(t, gates[0], KeySpec{Limits: Limits{ImageQuota: 1}})
	// Admitted and never finished: its gateway crashed.
	if _, err := gates[0].Admit(ctx, key, "", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := gates[1].Admit(ctx, key, "", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("admit while reserved: %v; want quota exceeded", err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := gates[1].Admit(ctx, key, "", 1); err != nil {
		t.Fatalf("admit after the reservation expired: %v", err)
	}
}

func pgReservations(t *testing.T, s *PostgresStore) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM quota_reservations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A database migrated before quotas lived in PostgreSQL keeps its usage
// counted against them.
func TestPostgresQuotaMigrationBackfills(t *testing.T) {
	dsn := newTestPostgresDB(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL);
		INSERT INTO schema_version VALUES (1);`+pgMigrations[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO keys (id, name, hint, hash, created_at, image_quota)
		VALUES ('k1', 'old', 'h', 'x', 0, 3);
		INSERT INTO usage (key_id, request_id, at, day, duration_ms, model, endpoint, images,
			pixels, steps, gpu_seconds, cached, status)
		VALUES ('k1', 'r1', 0, '2026-01-01', 0, 'm', 'e', 2, 0, 0, 0, false, 200)`); err != nil {
		t.Fatal(err)
	}
	s := openPostgresDSN(t, dsn)
	if _, err := s.ReserveQuota(ctx, "k1", testStart, 2, 0, 3); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("reserve 2 with 2 of 3 used before the migration: %v; want quota exceeded", err)
	}
	if _, err := s.ReserveQuota(ctx, "k1", testStart, 1, 0, 3); err != nil {
		t.Fatalf("reserve the last image: %v", err)
	}
}
