package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStoreUnwritable: the store cannot record usage now (read-only file
// system, full disk): requests that would have to be metered are refused
// before any work, and readiness says so.
var ErrStoreUnwritable = errors.New("usage store cannot write")

// ErrKeyStoreUnavailable: a key could not be looked up because the store
// did not answer (a database down or unreachable), which says nothing
// about the key itself.
var ErrKeyStoreUnavailable = errors.New("key store unavailable")

// WriteProber is a Store that can tell whether a write would succeed now,
// by making a small real one. Stores without it count as writable.
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}

// DefaultProbeTTL is how long a write probe's answer stands: a burst of
// requests probes once, and a store that recovers is noticed within it.
const DefaultProbeTTL = time.Second

// Writable reports whether the store can record usage, from a write probe
// at most DefaultProbeTTL old. Errors wrap ErrStoreUnwritable.
func (g *Gate) Writable(ctx context.Context) error {
	p, ok := g.store.(WriteProber)
	if !ok {
		return nil
	}
	now := g.now()
	g.probeMu.Lock()
	defer g.probeMu.Unlock() // one probe at a time; the others wait for its answer
	if age := now.Sub(g.probedAt); !g.probedAt.IsZero() && age >= 0 && age < DefaultProbeTTL {
		return g.probeErr
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := p.ProbeWrite(pctx)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrStoreUnwritable, err)
	}
	g.probedAt, g.probeErr = now, err
	return err
}

// ProbeWrite commits one small row, durably like usage records: a
// read-only database or a full disk fails it the way they would fail a
// usage record.
func (s *SQLiteStore) ProbeWrite(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	defer tx.Rollback() // after Commit it does nothing
	// Not a migration: the table only holds the probe's one row, and
	// creating it lazily keeps the schema's version steps to real data.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`,
		time.Now().UnixNano()); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}
