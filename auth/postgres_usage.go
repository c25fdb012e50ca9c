package auth

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgUsage commits a batch of usage writes to PostgreSQL in one transaction
// (the group commit itself is usageWriter's, shared with SQLite).
type pgUsage struct{ pool *pgxpool.Pool }

func (s *PostgresStore) RecordUsage(ctx context.Context, recs ...UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.writer.write(ctx, recs)
}

func (w pgUsage) commit(batch []usageWrite) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []UsageRecord
	for _, req := range batch {
		recs = append(recs, req.recs...)
	}
	// One lock order for every gateway's batches (quota_used and keys rows
	// by key and day), so concurrent commits wait rather than deadlock.
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.KeyID != b.KeyID {
			return a.KeyID < b.KeyID
		}
		return dayOf(a.At) < dayOf(b.At)
	})
	b := &pgx.Batch{}
	lastUsed := map[string]time.Time{}
	var ids []string
	for _, r := range recs {
		// A request id already recorded (a retry, a redelivery) is not
		// metered again: quota_used grows only by rows actually inserted.
		b.Queue(`WITH ins AS (
				INSERT INTO usage (key_id, request_id, at, day, duration_ms, model,
				endpoint, images, pixels, steps, gpu_seconds, cached, status, inputs, family, generated)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
				ON CONFLICT (request_id) DO NOTHING
				RETURNING key_id, day, images)
			INSERT INTO quota_used (key_id, day, images)
				SELECT key_id, day, images FROM ins WHERE key_id <> '' AND images > 0
			ON CONFLICT (key_id, day) DO UPDATE SET images = quota_used.images + EXCLUDED.images`,
			r.KeyID, r.RequestID, millis(r.At), dayOf(r.At), r.Duration.Milliseconds(),
			r.Model, r.Endpoint, r.Images, r.Pixels, r.Steps, r.GPUSeconds, r.Cached,
			r.Status, strings.Join(r.Inputs, ","), r.Family, r.Generated)
		if r.Reservation != "" {
			b.Queue(`DELETE FROM quota_reservations WHERE id = $1`, r.Reservation)
		}
		if end := r.At.Add(r.Duration); r.KeyID != "" && end.After(lastUsed[r.KeyID]) {
			if _, seen := lastUsed[r.KeyID]; !seen {
				ids = append(ids, r.KeyID)
			}
			lastUsed[r.KeyID] = end
		}
	}
	for _, id := range ids {
		t := lastUsed[id]
		b.Queue(`UPDATE keys SET last_used_at = $1
			WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, millis(t), id)
	}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

func (s *PostgresStore) UsageTotals(ctx context.Context, keyID, day string) (today, total int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
		COALESCE(SUM(CASE WHEN day = $1 THEN images ELSE 0 END), 0)::BIGINT,
		COALESCE(SUM(images), 0)::BIGINT FROM usage WHERE key_id = $2`, day, keyID).Scan(&today, &total)
	if err != nil {
		return 0, 0, fmt.Errorf("usage totals of %s: %w", keyID, err)
	}
	return today, total, nil
}

func (s *PostgresStore) UsageByDay(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error) {
	return s.usageSums(ctx, keyID, since, false)
}

func (s *PostgresStore) UsageByModel(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error) {
	return s.usageSums(ctx, keyID, since, true)
}

func (s *PostgresStore) usageSums(ctx context.Context, keyID string, since time.Time, byModel bool) ([]DayUsage, error) {
	model := "''"
	if byModel {
		model = "model"
	}
	rows, err := s.pool.Query(ctx, `SELECT day, key_id, `+model+`, COUNT(*),
		SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(CASE WHEN cached THEN 1 ELSE 0 END),
		SUM(images), SUM(pixels)::BIGINT, SUM(steps), SUM(gpu_seconds)
		FROM usage WHERE at >= $1 AND ($2 = '' OR key_id = $2)
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, millis(since), keyID)
	if err != nil {
		return nil, fmt.Errorf("usage by day: %w", err)
	}
	defer rows.Close()
	return scanDayUsage(rows)
}

func (s *PostgresStore) RecentUsage(ctx context.Context, keyID string, limit int) ([]UsageRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+recentColumns+`
		FROM usage WHERE ($1 = '' OR key_id = $1) ORDER BY at DESC, id DESC LIMIT $2`, keyID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent usage: %w", err)
	}
	defer rows.Close()
	return scanRecentUsage(rows)
}
