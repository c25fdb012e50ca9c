package cache

import (
	"github.com/sdgate/sdgate/internal/redisconn"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis defaults.
const (
	DefaultRedisPrefix        = "sdgate:cache:"
	DefaultRedisTTL           = 24 * time.Hour
	DefaultRedisMaxEntryBytes = 64 << 20
	DefaultRedisDialTimeout   = time.Second
)

// RedisOptions configure a Redis store. Give Addr or URL, not both; the
// zero value of every other field means its documented default.
type RedisOptions struct {
	// Addr is host:port of the server.
	Addr string
	// URL is redis://[user:password@]host:port[/db] (rediss:// for TLS),
	// as an alternative to Addr, Username, Password, DB and TLS.
	URL      string
	Username string
	Password string
	DB       int
	TLS      *tls.Config

	// Prefix starts every key (default "sdgate:cache:"), so the cache can
	// share a database with other data and be flushed by pattern.
	Prefix string
	// TTL is how long an entry lives after it was stored (default 24h).
	// Redis's own maxmemory policy (allkeys-lru suits) bounds the bytes.
	TTL time.Duration
	// MaxEntryBytes: larger entries are not stored (default 64 MiB).
	MaxEntryBytes int64
	// DialTimeout bounds connecting (default 1s): a lookup that waits on
	// an unreachable server delays the response it should speed up.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound one call; zero leaves go-redis's
	// default (3s).
	ReadTimeout, WriteTimeout time.Duration
}

// Redis is a Store on a Redis server, shared by every sdgate instance that
// points at it: entries computed by one instance are hits on the others.
// Values are the compact binary encoding of an Entry under
// Prefix + hex(key). It is a FlightLock too (redislock.go), so identical
// requests on different instances at the same moment compute once.
type Redis struct {
	client   *redis.Client
	prefix   string
	ttl      time.Duration
	maxEntry int64
	rejected atomic.Int64
}

var _ Store = (*Redis)(nil)

// NewRedis makes a Redis store. It does not connect: call Ping to check the
// server at start-up.
func NewRedis(opts RedisOptions) (*Redis, error) {
	ro, err := redisconn.Options{Addr: opts.Addr, URL: opts.URL, Username: opts.Username, Password: opts.Password,
		DB: opts.DB, TLS: opts.TLS}.Client()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if opts.TTL < 0 || opts.MaxEntryBytes < 0 {
		return nil, fmt.Errorf("%w: redis: negative TTL or MaxEntryBytes", ErrBadOptions)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout
	if ro.DialTimeout == 0 {
		ro.DialTimeout = DefaultRedisDialTimeout
	}
	// Fail fast: a failed lookup only costs a computation, while retries
	// delay every response while the server is down. (go-redis's pool
	// also stops dialling for a while after repeated dial failures.)
	ro.MaxRetries, ro.DialerRetries = -1, 1
	// Maintenance notifications are a Redis Cloud feature; probing for them
	// on a plain server only adds a round trip and log noise.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &Redis{
		client:   redis.NewClient(ro),
		prefix:   opts.Prefix,
		ttl:      opts.TTL,
		maxEntry: opts.MaxEntryBytes,
	}
	if r.prefix == "" {
		r.prefix = DefaultRedisPrefix
	}
	if r.ttl == 0 {
		r.ttl = DefaultRedisTTL
	}
	if r.maxEntry == 0 {
		r.maxEntry = DefaultRedisMaxEntryBytes
	}
	return r, nil
}

func (r *Redis) key(k Key) string { return r.prefix + k.String() }

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Get fetches and decodes the entry under k.
func (r *Redis) Get(ctx context.Context, k Key) (Entry, bool, error) {
	b, err := r.client.Get(ctx, r.key(k)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("redis get: %w", err)
	}
	e, err := decodeEntry(b)
	if err != nil {
		return Entry{}, false, fmt.Errorf("redis get %s: %w", r.key(k), err)
	}
	return e, true, nil
}

// Add stores e under k for the TTL; entries over MaxEntryBytes are counted
// as rejected and not sent.
func (r *Redis) Add(ctx context.Context, k Key, e Entry) error {
	b := encodeEntry(e)
	if int64(len(b)) > r.maxEntry {
		r.rejected.Add(1)
		return nil
	}
	if err := r.client.Set(ctx, r.key(k), b, r.ttl).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Stats reports rejected entries; size and evictions are the server's (see
// INFO memory and INFO stats on it).
func (r *Redis) Stats() StoreStats { return StoreStats{Rejected: r.rejected.Load()} }

// Close closes the connection pool.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("redis close: %w", err)
	}
	return nil
}
