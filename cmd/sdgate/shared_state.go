package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/server"
	"github.com/sdgate/sdgate/urlstore"
)

// State that several gateways share through Redis. serve takes these as
// options; the gateway command needs them.

// pingTimeout bounds the start-up check of a shared service.
const pingTimeout = 5 * time.Second

// openURLStore opens the response_format=url image store: "" keeps the
// server's in-memory one (nil), a redis:// URL shares it. flag names the
// option in errors.
func openURLStore(ctx context.Context, flag, url string, ttl time.Duration) (server.ImageStore, func(), error) {
	if url == "" {
		return nil, func() {}, nil
	}
	r, err := urlstore.NewRedis(urlstore.RedisOptions{URL: url, TTL: ttl})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return r, func() { r.Close() }, nil
}

// openRateLimiter opens the shared per-minute rate limiter: "" keeps the
// Gate's in-process buckets (nil), a redis:// URL shares them.
func openRateLimiter(ctx context.Context, flag, url string) (auth.RateLimiter, func(), error) {
	if url == "" {
		return nil, func() {}, nil
	}
	l, err := auth.NewRedisRateLimiter(auth.RedisLimiterOptions{URL: url})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := l.Ping(ctx); err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return l, func() { l.Close() }, nil
}

// openKeyStore opens the key store: PostgreSQL when dsn is given (shared by
// gateways; quotas are then reserved in it), else SQLite in dataDir.
func openKeyStore(ctx context.Context, dataDir, dsn string) (auth.Store, error) {
	if dsn == "" {
		return auth.OpenDataDir(ctx, dataDir)
	}
	s, err := auth.OpenPostgres(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	return s, nil
}
