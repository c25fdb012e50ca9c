package auth

import (
	"context"
	"time"
)

// Store keeps keys and usage records. SQLiteStore is the one sdgate ships; a
// server database can take its place by implementing this.
type Store interface {
	// CreateKey stores k, whose ID and Hash are set and unique.
	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash finds a key by the hash of its secret, revoked and expired
	// keys included; ErrKeyNotFound when there is none.
	KeyByHash(ctx context.Context, hash []byte) (*Key, error)
	// Key finds a key by id; ErrKeyNotFound when there is none.
	Key(ctx context.Context, id string) (*Key, error)
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// RevokeKey marks a key revoked at at; revoking twice keeps the first time.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// CountActiveKeys counts keys neither revoked nor expired at now.
	CountActiveKeys(ctx context.Context, now time.Time) (int, error)

	// RecordUsage returns once recs are durable: a crash after it returns
	// loses none of them. It also moves each key's LastUsedAt forward.
	RecordUsage(ctx context.Context, recs ...UsageRecord) error
	// UsageTotals sums the images of keyID: on the UTC day day ("2006-01-02")
	// and over all time.
	UsageTotals(ctx context.Context, keyID, day string) (today, total int64, err error)
	// UsageByDay sums the records at or after since per UTC day and key,
	// ordered by day then key id; keyID "" means every key.
	UsageByDay(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error)
	// UsageByModel is UsageByDay split by model too (DayUsage.Model set),
	// ordered by day, key id, model.
	UsageByModel(ctx context.Context, keyID string, since time.Time) ([]DayUsage, error)
	// RecentUsage returns keyID's newest records ("" every key's), newest
	// first, at most limit.
	RecentUsage(ctx context.Context, keyID string, limit int) ([]UsageRecord, error)

	Close() error
}

// UsageRecord is one request, written when it ends however it ended.
type UsageRecord struct {
	KeyID      string // "" for requests served without auth
	RequestID  string
	Model      string
	Endpoint   string        // e.g. "/v1/images/generations"
	At         time.Time     // when the request was admitted; its UTC day is the quota day
	Duration   time.Duration // admission to finish
	Images     int           // images produced (delivered or not)
	Pixels     int64         // sum of width*height over those images
	Steps      int           // denoising steps run, over all images
	GPUSeconds float64       // time the request held the GPU worker
	Cached     bool          // answered from the result cache
	Status     int           // HTTP status answered; 499 when the client left
	Inputs     []string      // digests of input images and mask (edits, variations)
	Family     string        // model family (sd15, sd2, sdxl); "" when unknown
	Generated  string        // size generated at, e.g. "1344x768" (before the last resize)
	// Reservation is the QuotaReserver reservation this record settles; ""
	// for none. Stores that are not QuotaReservers ignore it.
	Reservation string
}

// DayUsage is the usage of one key on one UTC day.
type DayUsage struct {
	Day        string // "2006-01-02", UTC
	KeyID      string
	Model      string // set by UsageByModel only
	Requests   int64
	Failed     int64 // requests answered with a status >= 400
	Cached     int64 // requests answered from the cache
	Images     int64
	Pixels     int64
	Steps      int64
	GPUSeconds float64
}

// dayOf is the quota day of t.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// nextDay is when the quota day of t ends.
func nextDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
