package auth

import (
	"github.com/sdgate/sdgate/internal/redisconn"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrRateLimiterUnavailable: the shared rate limiter could not answer and
// the Gate is set to fail closed (503, retry).
var ErrRateLimiterUnavailable = errors.New("rate limiter unavailable")

// RateLimiter spends keys' per-minute allowances in a place every gateway
// shares; without one (Options.RateLimiter nil) each Gate keeps token
// buckets in memory, exact for one process only.
type RateLimiter interface {
	// Take spends one request and images images of key id's allowances,
	// both or neither, and returns the headers after. A refusal is a
	// *RateLimitError; any other error means the limiter could not decide.
	Take(ctx context.Context, id string, limits Limits, images int) (RateHeaders, error)
	// Peek returns the headers now, spending nothing.
	Peek(ctx context.Context, id string, limits Limits) (RateHeaders, error)
}

// DefaultRateLimitPrefix starts the keys RedisRateLimiter writes.
const DefaultRateLimitPrefix = "sdgate:rl:"

// RedisLimiterOptions configure a RedisRateLimiter. Give Addr or URL.
type RedisLimiterOptions struct {
	// Addr is host:port; URL is redis://[user:password@]host:port[/db]
	// (rediss:// for TLS) instead of Addr, Username, Password, DB and TLS.
	Addr, URL          string
	Username, Password string
	DB                 int
	TLS                *tls.Config
	// Prefix starts every key (default "sdgate:rl:").
	Prefix string
	// Timeout bounds connecting and each call (default 500ms): admission
	// waits on it, so a slow Redis must not stall every request.
	Timeout time.Duration
	// Now is the clock (default time.Now). Gateways' clocks should agree
	// (NTP): a gateway behind the others refills nothing, one ahead
	// refills early by its lead.
	Now func() time.Time
}

// RedisRateLimiter is the token bucket of the in-process limiter (a full
// minute's allowance as burst, refilled continuously) kept in one Redis
// hash per key and updated by a Lua script, so gateways taking at once
// cannot overspend: the script runs atomically on the server.
type RedisRateLimiter struct {
	client *redis.Client
	prefix string
	now    func() time.Time
}

var _ RateLimiter = (*RedisRateLimiter)(nil)

// bucketScript refills both buckets of KEYS[1] to ARGV[1] (ms), then, when
// ARGV[5] is "1", takes 1 request and ARGV[4] images if both fit. ARGV[2]
// and ARGV[3] are the per-minute limits (0: unlimited); a changed limit
// starts its bucket full, as the in-process limiter does. Returns
// {status, wait ms, request tokens, image tokens}; status 0 taken (or
// peeked), 1 requests short, 2 images short, 3 images over the limit.
var bucketScript = redis.NewScript(`
local now, rpm, ipm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local take = ARGV[5] == '1'
local h = redis.call('HMGET', KEYS[1], 'r', 'i', 't', 'rm', 'im')
local r, i, t = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
if t == nil then t = now end
if r == nil or tonumber(h[4]) ~= rpm then r = rpm end
if i == nil or tonumber(h[5]) ~= ipm then i = ipm end
local el = now - t
if el < 0 then el = 0 end
r = math.min(rpm, r + el * rpm / 60000)
i = math.min(ipm, i + el * ipm / 60000)
local status, wait = 0, 0
if take then
  if ipm > 0 and n > ipm then
    status = 3
  else
    local rw, iw = 0, 0
    if rpm > 0 and r < 1 then rw = (1 - r) * 60000 / rpm end
    if ipm > 0 and n > 0 and i < n then iw = (n - i) * 60000 / ipm end
    if iw > rw then status, wait = 2, iw elseif rw > 0 then status, wait = 1, rw end
  end
  if status == 0 then
    if rpm > 0 then r = r - 1 end
    if ipm > 0 then i = i - n end
  end
  redis.call('HSET', KEYS[1], 'r', string.format('%.17g', r), 'i', string.format('%.17g', i),
    't', string.format('%d', math.max(now, t)), 'rm', rpm, 'im', ipm)
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return {status, string.format('%.17g', wait), string.format('%.17g', r), string.format('%.17g', i)}
`)

// NewRedisRateLimiter makes a limiter. It does not connect: call Ping.
func NewRedisRateLimiter(opts RedisLimiterOptions) (*RedisRateLimiter, error) {
	ro, err := redisconn.Options{Addr: opts.Addr, URL: opts.URL, Username: opts.Username, Password: opts.Password,
		DB: opts.DB, TLS: opts.TLS}.Client()
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = timeout, timeout, timeout
	ro.MaxRetries, ro.DialerRetries = -1, 1 // fail fast: the Gate decides what a failure means
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	l := &RedisRateLimiter{client: redis.NewClient(ro), prefix: opts.Prefix, now: opts.Now}
	if l.prefix == "" {
		l.prefix = DefaultRateLimitPrefix
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Ping checks that the server answers.
func (l *RedisRateLimiter) Ping(ctx context.Context) error {
	if err := l.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("rate limiter: redis ping: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (l *RedisRateLimiter) Close() error {
	if err := l.client.Close(); err != nil {
		return fmt.Errorf("rate limiter: redis close: %w", err)
	}
	return nil
}

// Take spends one request and images images, both or neither.
func (l *RedisRateLimiter) Take(ctx context.Context, id string, limits Limits, images int) (RateHeaders, error) {
	return l.run(ctx, id, limits, images, true)
}

// Peek reports the key's headers without spending.
func (l *RedisRateLimiter) Peek(ctx context.Context, id string, limits Limits) (RateHeaders, error) {
	return l.run(ctx, id, limits, 0, false)
}

func (l *RedisRateLimiter) run(ctx context.Context, id string, limits Limits, images int, take bool) (RateHeaders, error) {
	rpm, ipm := max(limits.RequestsPerMinute, 0), max(limits.ImagesPerMinute, 0)
	if rpm == 0 && ipm == 0 {
		return RateHeaders{}, nil // nothing to count: no round trip
	}
	flag := "0"
	if take {
		flag = "1"
	}
	vals, err := bucketScript.Run(ctx, l.client, []string{l.prefix + id},
		l.now().UnixMilli(), rpm, ipm, images, flag).Slice()
	if err != nil {
		return RateHeaders{}, fmt.Errorf("%w: redis: %w", ErrRateLimiterUnavailable, err)
	}
	res, err := parseBucketReply(vals)
	if err != nil {
		return RateHeaders{}, fmt.Errorf("%w: %w", ErrRateLimiterUnavailable, err)
	}
	h := res.headers(rpm, ipm)
	switch res.status {
	case 0:
		return h, nil
	case 1:
		return h, &RateLimitError{Limit: LimitRequests, Max: rpm, Used: rpm - h.RemainingRequests, Requested: 1,
			RetryAfter: msDuration(res.wait), Headers: h}
	case 2:
		return h, &RateLimitError{Limit: LimitImages, Max: ipm, Used: ipm - h.RemainingImages, Requested: images,
			RetryAfter: msDuration(res.wait), Headers: h}
	default:
		return h, &RateLimitError{Limit: LimitImages, Max: ipm, Used: ipm - h.RemainingImages, Requested: images,
			TooLarge: true, Headers: h}
	}
}

type bucketReply struct {
	status                  int64
	wait, requests, imagesT float64
}

// parseBucketReply reads the script's {status, wait, tokens, tokens}.
func parseBucketReply(vals []any) (bucketReply, error) {
	if len(vals) != 4 {
		return bucketReply{}, fmt.Errorf("rate limiter: script answered %d values, want 4", len(vals))
	}
	status, ok := vals[0].(int64)
	if !ok {
		return bucketReply{}, fmt.Errorf("rate limiter: script status %v is not an integer", vals[0])
	}
	var f [3]float64
	for i := range f {
		s, ok := vals[i+1].(string)
		if !ok {
			return bucketReply{}, fmt.Errorf("rate limiter: script value %v is not a number", vals[i+1])
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return bucketReply{}, fmt.Errorf("rate limiter: script value %q is not a number", s)
		}
		f[i] = v
	}
	return bucketReply{status: status, wait: f[0], requests: f[1], imagesT: f[2]}, nil
}

// headers turn token counts into the x-ratelimit-* values the in-process
// limiter gives: whole tokens left, time until the bucket is full.
func (b bucketReply) headers(rpm, ipm int) RateHeaders {
	var h RateHeaders
	if rpm > 0 {
		h.LimitRequests = rpm
		h.RemainingRequests = max(int(math.Floor(b.requests)), 0)
		h.ResetRequests = nsDuration((float64(rpm) - b.requests) * 60000 / float64(rpm))
	}
	if ipm > 0 {
		h.LimitImages = ipm
		h.RemainingImages = max(int(math.Floor(b.imagesT)), 0)
		h.ResetImages = nsDuration((float64(ipm) - b.imagesT) * 60000 / float64(ipm))
	}
	return h
}

// nsDuration is a time in milliseconds rounded up to the nanosecond, as
// the in-process buckets report resets (headers round them to the ms).
func nsDuration(ms float64) time.Duration {
	return time.Duration(math.Ceil(ms * float64(time.Millisecond)))
}

// msDuration rounds a wait in milliseconds up to the millisecond.
func msDuration(ms float64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return ceilMillis(time.Duration(math.Ceil(ms * float64(time.Millisecond))))
}
