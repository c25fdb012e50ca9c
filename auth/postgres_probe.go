package auth

import (
	"context"
	"fmt"
	"time"
)

// ProbeWrite commits one small row, as SQLiteStore's does: a read-only
// database (a standby, default_transaction_read_only) or a full disk fails
// it the way it would fail a usage record.
func (s *PostgresStore) ProbeWrite(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit it does nothing
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO write_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`,
		time.Now().UnixNano()); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}
