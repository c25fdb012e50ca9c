package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresProbeWrite(t *testing.T) {
	dsn := newTestPostgresDB(t)
	ctx := context.Background()
	s := openPostgresDSN(t, dsn)
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("writable database: %v", err)
	}
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("second probe (row exists): %v", err)
	}
	// A database made read-only: sessions opened from now on cannot write.
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := c.Config().Database
	if _, err := c.Exec(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	s.pool.Reset() // drop the pool's sessions: the next ones start read-only
	err = s.ProbeWrite(ctx)
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("read-only database: probe = %v, want a read-only error", err)
	}
}
