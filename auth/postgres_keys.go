package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Close waits for queued usage records to commit, then closes the pool.
func (s *PostgresStore) Close() error {
	s.once.Do(func() {
		s.writer.close()
		s.pool.Close()
	})
	return nil
}

func (s *PostgresStore) CreateKey(ctx context.Context, k *Key) error {
	models, err := json.Marshal(k.Models)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO keys (`+keyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		k.ID, k.Name, k.Hint, k.Hash, millis(k.CreatedAt), nullMillis(k.LastUsedAt),
		nullMillis(k.ExpiresAt), nullMillis(k.RevokedAt),
		k.Limits.RequestsPerMinute, k.Limits.ImagesPerMinute, k.Limits.ImagesPerDay,
		k.Limits.ImageQuota, string(models), k.Admin)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	return nil
}

func (s *PostgresStore) KeyByHash(ctx context.Context, hash []byte) (*Key, error) {
	return scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = $1`, hash), pgx.ErrNoRows)
}

func (s *PostgresStore) Key(ctx context.Context, id string) (*Key, error) {
	return scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1`, id), pgx.ErrNoRows)
}

func (s *PostgresStore) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	return scanKeys(rows, pgx.ErrNoRows)
}

func (s *PostgresStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, millis(at), id)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke key %s: %w", id, ErrKeyNotFound)
	}
	return nil
}

func (s *PostgresStore) CountActiveKeys(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM keys
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`, millis(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return n, nil
}
