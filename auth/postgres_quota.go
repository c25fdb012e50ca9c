package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultReservationTTL is how long a PostgreSQL quota reservation counts
// when no usage record or release settles it: longer than any request runs,
// so only the reservations of a crashed gateway ever expire.
const DefaultReservationTTL = 15 * time.Minute

// pgQuotaLockSpace is the first key of the two-key advisory lock that
// serializes one key's reservations across every gateway.
const pgQuotaLockSpace = 5347

// SetReservationTTL changes how long an unsettled reservation counts; d <= 0
// restores DefaultReservationTTL. Call it before the store is in use.
func (s *PostgresStore) SetReservationTTL(d time.Duration) {
	if d <= 0 {
		d = DefaultReservationTTL
	}
	s.reservationTTL = d
}

// ReserveQuota checks and reserves in one short transaction under a per-key
// advisory lock, so two gateways can never both take the last image. Expiry
// uses the database clock, the same for every gateway; the day is at's.
func (s *PostgresStore) ReserveQuota(ctx context.Context, keyID string, at time.Time, n int, dailyLimit int, totalLimit int64) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("reserve quota: negative image count %d", n)
	}
	id, err := newReservationID()
	if err != nil {
		return "", fmt.Errorf("reserve quota: %w", err)
	}
	var qerr *QuotaError
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgQuotaLockSpace, keyID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM quota_reservations
			WHERE key_id = $1 AND expires_at <= clock_timestamp()`, keyID); err != nil {
			return err
		}
		var today, total, reserved int64
		if err := tx.QueryRow(ctx, `SELECT
			COALESCE((SELECT SUM(images) FROM quota_used WHERE key_id = $1 AND day = $2), 0)::BIGINT,
			COALESCE((SELECT SUM(images) FROM quota_used WHERE key_id = $1), 0)::BIGINT,
			COALESCE((SELECT SUM(images) FROM quota_reservations WHERE key_id = $1), 0)::BIGINT`,
			keyID, dayOf(at)).Scan(&today, &total, &reserved); err != nil {
			return err
		}
		// Every running request counts against today, whatever day it began:
		// the same caution at midnight as the in-process counters.
		qerr = quotaCheck(at, n, dailyLimit, totalLimit, today, total, reserved)
		if qerr != nil {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO quota_reservations (id, key_id, images, expires_at)
			VALUES ($1, $2, $3, clock_timestamp() + $4 * INTERVAL '1 millisecond')`,
			id, keyID, n, s.reservationTTL.Milliseconds())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reserve quota of %s: %w", keyID, err)
	}
	if qerr != nil {
		return "", qerr
	}
	return id, nil
}

func (s *PostgresStore) ReleaseQuota(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM quota_reservations WHERE id = $1`, id); err != nil {
		return fmt.Errorf("release quota: %w", err)
	}
	return nil
}

// quotaCheck is the quota rule shared by the in-process counters and the
// stores: used plus reserved plus n must stay within each limit.
func quotaCheck(at time.Time, n int, dailyLimit int, totalLimit int64, today, total, reserved int64) *QuotaError {
	if limit := int64(dailyLimit); limit > 0 && today+reserved+int64(n) > limit {
		return &QuotaError{Quota: QuotaDaily, Limit: limit, Used: today + reserved,
			Requested: n, ResetAt: nextDay(at)}
	}
	if totalLimit > 0 && total+reserved+int64(n) > totalLimit {
		return &QuotaError{Quota: QuotaTotal, Limit: totalLimit, Used: total + reserved, Requested: n}
	}
	return nil
}

func newReservationID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
