package auth

import (
	"context"
	"time"
)

// QuotaReserver is a Store that holds quota reservations itself, so a quota
// shared by many gateways is exact across all of them. The Gate uses it
// instead of its in-process counters when the Store implements it.
//
// A reservation ends one of three ways: RecordUsage writes a UsageRecord
// whose Reservation names it (in the same transaction as the record, so the
// images move from reserved to used atomically), ReleaseQuota drops it, or
// it expires (its process crashed) and stops counting.
type QuotaReserver interface {
	// ReserveQuota reserves n images of keyID against dailyLimit (images on
	// the UTC day of at) and totalLimit (images ever); 0 means no limit. It
	// answers *QuotaError when used plus reserved plus n would pass a limit.
	ReserveQuota(ctx context.Context, keyID string, at time.Time, n int, dailyLimit int, totalLimit int64) (id string, err error)
	// ReleaseQuota drops a reservation; an unknown or settled id is no error.
	ReleaseQuota(ctx context.Context, id string) error
}
