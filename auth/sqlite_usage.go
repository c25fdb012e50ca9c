package auth

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

func (s *SQLiteStore) RecordUsage(ctx context.Context, recs ...UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.writer.write(ctx, recs)
}

// sqliteUsage commits a batch of usage writes to SQLite in one transaction.
type sqliteUsage struct{ db *sql.DB }

func (w sqliteUsage) commit(batch []usageWrite) error {
	// Not the callers' contexts: one caller leaving must not roll back the others.
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO usage (key_id, request_id, at, day,
		duration_ms, model, endpoint, images, pixels, steps, gpu_seconds, cached, status, inputs, family, generated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	defer ins.Close()
	lastUsed := map[string]time.Time{}
	for _, req := range batch {
		for _, r := range req.recs {
			_, err := ins.ExecContext(ctx, r.KeyID, r.RequestID, millis(r.At), dayOf(r.At),
				r.Duration.Milliseconds(), r.Model, r.Endpoint, r.Images, r.Pixels, r.Steps,
				r.GPUSeconds, r.Cached, r.Status, strings.Join(r.Inputs, ","), r.Family, r.Generated)
			if err != nil {
				return fmt.Errorf("record usage: %w", err)
			}
			if end := r.At.Add(r.Duration); r.KeyID != "" && end.After(lastUsed[r.KeyID]) {
				lastUsed[r.KeyID] = end
			}
		}
	}
	for id, t := range lastUsed { // one update per key, not per record
		_, err := tx.ExecContext(ctx, `UPDATE keys SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, millis(t), id, millis(t))
		if err != nil {
			return fmt.Errorf("record usage: last used: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record usage: commit: %w", err)
	}
	return nil
}

func (s *SQLiteStore) UsageTotals(ctx context.Context, keyID, day string) (today, total int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN day = ? THEN images ELSE 0 END), 0), COALESCE(SUM(images), 0)
		FROM usage WHERE key_id = ?`, day, keyID).Scan(&today, &total)
	if err != nil {
		return 0, 0, fmt.Errorf("usage totals of %s: %w", keyID, err)
	}
	return today, total, nil
}

func (s *SQLiteStore) UsageByDay(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error) {
	return s.usageSums(ctx, keyID, since, false)
}

func (s *SQLiteStore) UsageByModel(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error) {
	return s.usageSums(ctx, keyID, since, true)
}

func (s *SQLiteStore) usageSums(ctx context.Context, keyID string, since time.Time, byModel bool) ([]DayUsage, error) {
	model := "''"
	if byModel {
		model = "model"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT day, key_id, `+model+`, COUNT(*),
		SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(cached),
		SUM(images), SUM(pixels), SUM(steps), SUM(gpu_seconds)
		FROM usage WHERE at >= ? AND (? = '' OR key_id = ?)
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, millis(since), keyID, keyID)
	if err != nil {
		return nil, fmt.Errorf("usage by day: %w", err)
	}
	defer rows.Close()
	return scanDayUsage(rows)
}

func (s *SQLiteStore) RecentUsage(ctx context.Context, keyID string, limit int) ([]UsageRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+recentColumns+`
		FROM usage WHERE (? = '' OR key_id = ?) ORDER BY at DESC, id DESC LIMIT ?`, keyID, keyID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent usage: %w", err)
	}
	defer rows.Close()
	return scanRecentUsage(rows)
}
