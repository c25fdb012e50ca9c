package auth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

var _ AdminRevoker = (*PostgresStore)(nil)

// RevokeKeyKeepingAdmin checks and revokes in one transaction that first
// locks every active admin row (FOR UPDATE, in id order so two revokes
// never deadlock). A concurrent revoke from another gateway waits on those
// locks; once the first commits, READ COMMITTED re-reads the rows it waited
// for and drops the key now revoked, so it counts what is really left.
func (s *PostgresStore) RevokeKeyKeepingAdmin(ctx context.Context, id string, at time.Time, otherAdmins int) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	defer tx.Rollback(ctx)
	return adminTx{
		lock: func() (*Key, int, error) {
			rows, err := tx.Query(ctx, `SELECT id FROM keys WHERE `+activeAdminsWhere("$1")+` ORDER BY id FOR UPDATE`, millis(at))
			if err != nil {
				return nil, 0, fmt.Errorf("lock admin keys: %w", err)
			}
			admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return nil, 0, fmt.Errorf("lock admin keys: %w", err)
			}
			target, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1 FOR UPDATE`, id), pgx.ErrNoRows)
			if slices.Contains(admins, id) {
				return target, len(admins) - 1, err
			}
			return target, len(admins), err
		},
		revoke: func() error {
			_, err := tx.Exec(ctx, `UPDATE keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, millis(at), id)
			return err
		},
		commit: func() error { return tx.Commit(ctx) },
	}.run(id, at, otherAdmins)
}
