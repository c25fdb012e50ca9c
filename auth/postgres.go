package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore is a Store on a PostgreSQL server shared by many gateways.
// Usage rows are unique by request id, so a retried or redelivered request
// is metered once.
type PostgresStore struct {
	pool   *pgxpool.Pool
	writer *usageWriter
	once   sync.Once
	// reservationTTL: how long a quota reservation counts when nothing
	// settles it (its gateway crashed).
	reservationTTL time.Duration
}

var (
	_ Store         = (*PostgresStore)(nil)
	_ QuotaReserver = (*PostgresStore)(nil)
)

// pgMigrations[i] takes the schema from version i to i+1. Append only.
var pgMigrations = []string{
	`CREATE TABLE keys (
		id             TEXT PRIMARY KEY,
		name           TEXT NOT NULL,
		hint           TEXT NOT NULL,
		hash           BYTEA NOT NULL UNIQUE,
		created_at     BIGINT NOT NULL,
		last_used_at   BIGINT,
		expires_at     BIGINT,
		revoked_at     BIGINT,
		rpm            INTEGER NOT NULL DEFAULT 0,
		ipm            INTEGER NOT NULL DEFAULT 0,
		images_per_day INTEGER NOT NULL DEFAULT 0,
		image_quota    BIGINT NOT NULL DEFAULT 0,
		models         TEXT NOT NULL DEFAULT '[]',
		admin          BOOLEAN NOT NULL DEFAULT FALSE
	);
	CREATE TABLE usage (
		id          BIGSERIAL PRIMARY KEY,
		key_id      TEXT NOT NULL,
		request_id  TEXT NOT NULL UNIQUE,
		at          BIGINT NOT NULL,
		day         TEXT NOT NULL,
		duration_ms BIGINT NOT NULL,
		model       TEXT NOT NULL,
		endpoint    TEXT NOT NULL,
		images      INTEGER NOT NULL,
		pixels      BIGINT NOT NULL,
		steps       INTEGER NOT NULL,
		gpu_seconds DOUBLE PRECISION NOT NULL,
		cached      BOOLEAN NOT NULL,
		status      INTEGER NOT NULL,
		inputs      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX usage_key_day ON usage (key_id, day);
	CREATE INDEX usage_at ON usage (at);`,
	// 2: quota shared across gateways: images used per key and day, kept by
	// the usage writer, and the reservations of requests still running.
	`CREATE TABLE quota_used (
		key_id TEXT NOT NULL,
		day    TEXT NOT NULL,
		images BIGINT NOT NULL,
		PRIMARY KEY (key_id, day)
	);
	INSERT INTO quota_used (key_id, day, images)
		SELECT key_id, day, SUM(images) FROM usage WHERE key_id <> '' GROUP BY key_id, day;
	CREATE TABLE quota_reservations (
		id         TEXT PRIMARY KEY,
		key_id     TEXT NOT NULL,
		images     BIGINT NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL
	);
	CREATE INDEX quota_reservations_key ON quota_reservations (key_id, expires_at);`,
	// 3: the model family and the size the images were generated at.
	`ALTER TABLE usage ADD COLUMN family TEXT NOT NULL DEFAULT '';
	ALTER TABLE usage ADD COLUMN generated TEXT NOT NULL DEFAULT ''`,
}

// OpenPostgres connects to dsn and brings the schema up to date.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	if err := pgMigrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate key store: %w", err)
	}
	return &PostgresStore{pool: pool, writer: newUsageWriter(pgUsage{pool}.commit), reservationTTL: DefaultReservationTTL}, nil
}

// pgMigrate runs under an advisory lock so gateways starting together
// migrate once.
func pgMigrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(5347617465)`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if version > len(pgMigrations) {
		return fmt.Errorf("schema version %d is newer than this sdgate (%d): upgrade sdgate", version, len(pgMigrations))
	}
	for v := version; v < len(pgMigrations); v++ {
		if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
			return fmt.Errorf("step %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, len(pgMigrations)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
