package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver; pure Go, no cgo
)

// DBName is the key store's file in the data directory.
const DBName = "auth.db"

// SQLiteStore is the Store sdgate ships: one SQLite file in WAL mode with
// synchronous=FULL, so a commit survives power loss.
type SQLiteStore struct {
	db     *sql.DB
	writer *usageWriter
	once   sync.Once
}

var _ Store = (*SQLiteStore)(nil)

// OpenDataDir opens (creating them if needed) dir and dir/auth.db.
func OpenDataDir(ctx context.Context, dir string) (*SQLiteStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return OpenSQLite(ctx, filepath.Join(dir, DBName))
}

// OpenSQLite opens or creates the database at path and brings its schema up
// to date.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open key store: path %q contains '?'", path) // the driver reads options after '?'
	}
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := checkWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate key store %s: %w", path, err)
	}
	return &SQLiteStore{db: db, writer: newUsageWriter(sqliteUsage{db}.commit)}, nil
}

// checkWAL fails when the file system refused WAL mode (some network file
// systems do): the durability promise rests on it.
func checkWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

// Close waits for queued usage records to commit, then closes the database.
func (s *SQLiteStore) Close() error {
	var err error
	s.once.Do(func() {
		s.writer.close()
		err = s.db.Close()
	})
	return err
}

const keyColumns = `id, name, hint, hash, created_at, last_used_at, expires_at, revoked_at,
	rpm, ipm, images_per_day, image_quota, models, admin`

func (s *SQLiteStore) CreateKey(ctx context.Context, k *Key) error {
	models, err := json.Marshal(k.Models)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Hint, k.Hash, millis(k.CreatedAt), nullMillis(k.LastUsedAt),
		nullMillis(k.ExpiresAt), nullMillis(k.RevokedAt),
		k.Limits.RequestsPerMinute, k.Limits.ImagesPerMinute, k.Limits.ImagesPerDay,
		k.Limits.ImageQuota, string(models), k.Admin)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	return nil
}

func (s *SQLiteStore) KeyByHash(ctx context.Context, hash []byte) (*Key, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = ?`, hash)
	return scanKey(row, sql.ErrNoRows)
}

func (s *SQLiteStore) Key(ctx context.Context, id string) (*Key, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id)
	return scanKey(row, sql.ErrNoRows)
}

func (s *SQLiteStore) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	return scanKeys(rows, sql.ErrNoRows)
}

func (s *SQLiteStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, millis(at), id)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke key %s: %w", id, ErrKeyNotFound)
	}
	return nil
}

func (s *SQLiteStore) CountActiveKeys(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`, millis(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return n, nil
}

type rowScanner interface{ Scan(dest ...any) error }

// scanKey reads one keys row (either store's); noRows is the driver's
// "no such row" error.
func scanKey(row rowScanner, noRows error) (*Key, error) {
	var (
		k                          Key
		created                    int64
		lastUsed, expires, revoked sql.NullInt64
		models                     string
	)
	err := row.Scan(&k.ID, &k.Name, &k.Hint, &k.Hash, &created, &lastUsed, &expires, &revoked,
		&k.Limits.RequestsPerMinute, &k.Limits.ImagesPerMinute, &k.Limits.ImagesPerDay,
		&k.Limits.ImageQuota, &models, &k.Admin)
	if errors.Is(err, noRows) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return nil, fmt.Errorf("read key %s: models: %w", k.ID, err)
	}
	k.CreatedAt = fromMillis(created)
	k.LastUsedAt = fromNullMillis(lastUsed)
	k.ExpiresAt = fromNullMillis(expires)
	k.RevokedAt = fromNullMillis(revoked)
	return &k, nil
}

// Times are stored as Unix milliseconds: they sort and compare in SQL.
func millis(t time.Time) int64 { return t.UnixMilli() }

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMillis(v.Int64)
}
