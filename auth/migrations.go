package auth

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to i+1 (PRAGMA user_version).
// Append only: a released step never changes.
var migrations = []string{
	`CREATE TABLE keys (
		id             TEXT PRIMARY KEY,
		name           TEXT NOT NULL,
		hint           TEXT NOT NULL,
		hash           BLOB NOT NULL UNIQUE,
		created_at     INTEGER NOT NULL,
		last_used_at   INTEGER,
		expires_at     INTEGER,
		revoked_at     INTEGER,
		rpm            INTEGER NOT NULL DEFAULT 0,
		ipm            INTEGER NOT NULL DEFAULT 0,
		images_per_day INTEGER NOT NULL DEFAULT 0,
		image_quota    INTEGER NOT NULL DEFAULT 0,
		models         TEXT NOT NULL DEFAULT '[]',
		admin          INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE usage (
		id          INTEGER PRIMARY KEY,
		key_id      TEXT NOT NULL,
		request_id  TEXT NOT NULL,
		at          INTEGER NOT NULL,
		day         TEXT NOT NULL,
		duration_ms INTEGER NOT NULL,
		model       TEXT NOT NULL,
		endpoint    TEXT NOT NULL,
		images      INTEGER NOT NULL,
		pixels      INTEGER NOT NULL,
		steps       INTEGER NOT NULL,
		gpu_seconds REAL NOT NULL,
		cached      INTEGER NOT NULL,
		status      INTEGER NOT NULL
	);
	CREATE INDEX usage_key_day ON usage (key_id, day);
	CREATE INDEX usage_at ON usage (at);`,
	// 2: digests of the input image(s) and mask of edits and variations.
	`ALTER TABLE usage ADD COLUMN inputs TEXT NOT NULL DEFAULT ''`,
	// 3: the model family and the size the images were generated at.
	`ALTER TABLE usage ADD COLUMN family TEXT NOT NULL DEFAULT '';
	ALTER TABLE usage ADD COLUMN generated TEXT NOT NULL DEFAULT ''`,
}

// migrate applies the missing steps, each in its own transaction together
// with the version bump, so a crash leaves the schema at a known version.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this sdgate (%d): upgrade sdgate", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return fmt.Errorf("step %d: %w", v+1, err)
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have migrated while this one waited for the lock.
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > from {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return err
	}
	return tx.Commit()
}
