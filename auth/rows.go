package auth

import (
	"fmt"
	"strings"
	"time"
)

// rows is what both drivers' result sets offer (database/sql and pgx).
type rows interface {
	rowScanner
	Next() bool
	Err() error
}

// scanKeys reads keys rows (either store's); noRows is the driver's
// "no rows" error.
func scanKeys(rs rows, noRows error) ([]Key, error) {
	var keys []Key
	for rs.Next() {
		k, err := scanKey(rs, noRows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, *k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

func scanDayUsage(rs rows) ([]DayUsage, error) {
	var out []DayUsage
	for rs.Next() {
		var u DayUsage
		if err := rs.Scan(&u.Day, &u.KeyID, &u.Model, &u.Requests, &u.Failed, &u.Cached,
			&u.Images, &u.Pixels, &u.Steps, &u.GPUSeconds); err != nil {
			return nil, fmt.Errorf("usage by day: %w", err)
		}
		out = append(out, u)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("usage by day: %w", err)
	}
	return out, nil
}

// recentColumns are the usage columns scanRecentUsage reads, in order.
const recentColumns = `key_id, request_id, at, duration_ms, model, endpoint, images, pixels,
	steps, gpu_seconds, cached, status, inputs, family, generated`

func scanRecentUsage(rs rows) ([]UsageRecord, error) {
	var out []UsageRecord
	for rs.Next() {
		var r UsageRecord
		var at, durationMS int64
		var inputs string
		if err := rs.Scan(&r.KeyID, &r.RequestID, &at, &durationMS, &r.Model, &r.Endpoint, &r.Images,
			&r.Pixels, &r.Steps, &r.GPUSeconds, &r.Cached, &r.Status, &inputs, &r.Family, &r.Generated); err != nil {
			return nil, fmt.Errorf("recent usage: %w", err)
		}
		r.At, r.Duration = fromMillis(at), time.Duration(durationMS)*time.Millisecond
		if inputs != "" {
			r.Inputs = strings.Split(inputs, ",")
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("recent usage: %w", err)
	}
	return out, nil
}
