package urlstore

import (
	"github.com/sdgate/sdgate/internal/redisconn"

	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix starts every key the Redis store writes.
const DefaultRedisPrefix = "sdgate:img:"

// RedisOptions configure a Redis store. Give Addr or URL, not both; the
// zero value of every other field means its documented default.
type RedisOptions struct {
	// Addr is host:port; URL is redis://[user:password@]host:port[/db]
	// (rediss:// for TLS) instead of Addr, Username, Password, DB and TLS.
	Addr, URL          string
	Username, Password string
	DB                 int
	TLS                *tls.Config

	// Prefix starts every key (default "sdgate:img:").
	Prefix string
	// TTL is the URL lifetime (default 60m): images expire in Redis then.
	TTL time.Duration
	// MaxBytes bounds the image bytes held under Prefix (default 1 GiB);
	// storing more evicts the images that expire first.
	MaxBytes int64
	// MaxImageBytes bounds one image (default 64 MiB): larger ones are
	// refused with ErrTooLarge rather than sent.
	MaxImageBytes int64
	// DialTimeout bounds connecting (default 1s).
	DialTimeout time.Duration
	// Now is the clock for expiry times (default time.Now). Gateways that
	// share a store should run NTP: the eviction order compares their
	// clocks, while Redis's own TTL does the expiring.
	Now func() time.Time
}

// Redis is a store on a Redis server. Each image is a hash {d: bytes,
// t: content type} under Prefix+name with a TTL; an index (sorted set by
// expiry, sizes hash, byte counter) bounds the total, all kept consistent
// by Lua scripts so gateways storing at once never overshoot the bound.
// It targets a standalone Redis (or one primary), not Redis Cluster: the
// scripts touch image keys they compute.
type Redis struct {
	client   *redis.Client
	prefix   string
	ttl      time.Duration
	maxBytes int64
	maxImage int64
	now      func() time.Time

	count, bytes atomic.Int64 // as of the last put
}

// The put script: drop index entries that expired, add the response's
// images, then evict the soonest-expiring others while over the budget.
// KEYS: index, sizes, total. ARGV: now ms, ttl ms, max bytes, prefix,
// then name, data, content type per image. Returns {bytes, count}.
var putScript = redis.NewScript(`
local index, sizes, total = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, maxb, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local function drop(name)
  local sz = tonumber(redis.call('HGET', sizes, name) or '0')
  redis.call('HDEL', sizes, name)
  redis.call('ZREM', index, name)
  redis.call('DECRBY', total, sz)
  redis.call('DEL', prefix .. name)
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now)) do drop(name) end
local mine = {}
for i = 5, #ARGV, 3 do
  local name, data = ARGV[i], ARGV[i + 1]
  redis.call('HSET', prefix .. name, 'd', data, 't', ARGV[i + 2])
  redis.call('PEXPIRE', prefix .. name, ttl)
  redis.call('ZADD', index, now + ttl, name)
  redis.call('HSET', sizes, name, #data)
  redis.call('INCRBY', total, #data)
  mine[name] = true
end
local bytes = tonumber(redis.call('GET', total) or '0')
local skip = 0
while bytes > maxb do
  local m = redis.call('ZRANGE', index, skip, skip)
  if #m == 0 then break end
  if mine[m[1]] then
    skip = skip + 1
  else
    drop(m[1])
    bytes = tonumber(redis.call('GET', total) or '0')
  end
end
return {bytes, redis.call('ZCARD', index)}
`)

// NewRedis makes a Redis store. It does not connect: call Ping at start-up.
func NewRedis(opts RedisOptions) (*Redis, error) {
	ro, err := redisconn.Options{Addr: opts.Addr, URL: opts.URL, Username: opts.Username, Password: opts.Password,
		DB: opts.DB, TLS: opts.TLS}.Client()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if opts.TTL < 0 || opts.MaxBytes < 0 || opts.MaxImageBytes < 0 {
		return nil, fmt.Errorf("%w: redis: negative TTL, MaxBytes or MaxImageBytes", ErrBadOptions)
	}
	if opts.TTL > 0 && opts.TTL < time.Millisecond {
		return nil, fmt.Errorf("%w: redis: TTL %v under a millisecond", ErrBadOptions, opts.TTL)
	}
	ro.DialTimeout = opts.DialTimeout
	if ro.DialTimeout == 0 {
		ro.DialTimeout = time.Second
	}
	// Fail fast: a request waiting on a dead server is better refused.
	ro.MaxRetries, ro.DialerRetries = -1, 1
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &Redis{client: redis.NewClient(ro), prefix: opts.Prefix, ttl: opts.TTL,
		maxBytes: opts.MaxBytes, maxImage: opts.MaxImageBytes, now: opts.Now}
	if r.prefix == "" {
		r.prefix = DefaultRedisPrefix
	}
	if r.ttl == 0 {
		r.ttl = DefaultTTL
	}
	if r.maxBytes == 0 {
		r.maxBytes = DefaultMaxBytes
	}
	if r.maxImage == 0 {
		r.maxImage = DefaultMaxImageBytes
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("url store: redis ping: %w", err)
	}
	return nil
}

// PutAll stores one response's images under fresh names, evicting only
// other responses' images to stay within MaxBytes.
func (r *Redis) PutAll(ctx context.Context, datas [][]byte, contentType, ext string) ([]string, time.Time, error) {
	if !validExt(ext) {
		return nil, time.Time{}, fmt.Errorf("url store: bad extension %q", ext)
	}
	var sum int64
	for i, d := range datas {
		if int64(len(d)) > r.maxImage {
			return nil, time.Time{}, fmt.Errorf("%w: image %d is %d bytes, over %d", ErrTooLarge, i, len(d), r.maxImage)
		}
		sum += int64(len(d))
	}
	if sum > r.maxBytes {
		return nil, time.Time{}, fmt.Errorf("%w: %d bytes together, over the store's %d", ErrTooLarge, sum, r.maxBytes)
	}
	now := r.now()
	names := make([]string, len(datas))
	args := []any{now.UnixMilli(), r.ttl.Milliseconds(), r.maxBytes, r.prefix}
	for i, d := range datas {
		names[i] = newName(ext)
		args = append(args, names[i], d, contentType)
	}
	res, err := putScript.Run(ctx, r.client, r.indexKeys(), args...).Int64Slice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("url store: redis put: %w", err)
	}
	if len(res) == 2 {
		r.bytes.Store(res[0])
		r.count.Store(res[1])
	}
	return names, now.Add(r.ttl), nil
}

func (r *Redis) indexKeys() []string {
	return []string{r.prefix + "index", r.prefix + "sizes", r.prefix + "bytes"}
}

// Get returns a live image; names of the wrong shape are not looked up.
func (r *Redis) Get(ctx context.Context, name string) (Image, bool, error) {
	if !ValidName(name) {
		return Image{}, false, nil
	}
	key := r.prefix + name
	var fields *redis.SliceCmd
	var pttl *redis.DurationCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, key, "d", "t")
		pttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return Image{}, false, fmt.Errorf("url store: redis get: %w", err)
	}
	vals := fields.Val()
	data, okData := vals[0].(string)
	ct, okType := vals[1].(string)
	left := pttl.Val()
	if !okData || !okType || left <= 0 {
		return Image{}, false, nil // missing, expired, or (left < 0) without a TTL: not ours
	}
	return Image{Data: []byte(data), ContentType: ct, Expires: r.now().Add(left)}, true, nil
}

// Stats are the image count and bytes as of this process's last put: the
// server's figures, shared by every gateway, without a round trip.
func (r *Redis) Stats() (count int, bytes int64) {
	return int(r.count.Load()), r.bytes.Load()
}

// Close closes the connection pool.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("url store: redis close: %w", err)
	}
	return nil
}
