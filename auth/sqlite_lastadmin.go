package auth

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

var _ AdminRevoker = (*SQLiteStore)(nil)

// RevokeKeyKeepingAdmin checks and revokes in one write transaction: the
// DSN's _txlock=immediate makes it BEGIN IMMEDIATE, which takes the
// database's write lock before the first read, so a second process's
// revoke waits (busy_timeout) and then counts this one's result.
func (s *SQLiteStore) RevokeKeyKeepingAdmin(ctx context.Context, id string, at time.Time, otherAdmins int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	defer tx.Rollback()
	return adminTx{
		lock: func() (*Key, int, error) {
			target, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id), sql.ErrNoRows)
			if err != nil {
				return nil, 0, err
			}
			var others int
			err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE id <> ? AND `+activeAdminsWhere("?"), id, millis(at)).Scan(&others)
			return target, others, err
		},
		revoke: func() error {
			_, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, millis(at), id)
			return err
		},
		commit: tx.Commit,
	}.run(id, at, otherAdmins)
}
