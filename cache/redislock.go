package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis store's flight claims: Prefix + "flight:" + hex(key), set NX
// with a PX TTL to a random token; only the token's holder extends or
// deletes it (a check-and-act in Lua, so a lapsed claim that another
// instance took over is never removed by the first).

var _ FlightLock = (*Redis)(nil)

var (
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

func (r *Redis) claimKey(k Key) string { return r.prefix + "flight:" + k.String() }

// Claim takes the key's claim for ttl unless another instance holds it.
func (r *Redis) Claim(ctx context.Context, k Key, ttl time.Duration) (string, bool, error) {
	if ttl < time.Millisecond {
		return "", false, fmt.Errorf("%w: claim TTL %v under a millisecond", ErrBadOptions, ttl)
	}
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	token := hex.EncodeToString(b[:])
	ok, err := r.client.SetNX(ctx, r.claimKey(k), token, ttl).Result()
	if err != nil {
		return "", false, fmt.Errorf("redis claim: %w", err)
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

// Extend renews a claim this token holds.
func (r *Redis) Extend(ctx context.Context, k Key, token string, ttl time.Duration) (bool, error) {
	n, err := extendScript.Run(ctx, r.client, []string{r.claimKey(k)}, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("redis extend claim: %w", err)
	}
	return n == 1, nil
}

// Release deletes a claim this token holds.
func (r *Redis) Release(ctx context.Context, k Key, token string) error {
	if err := releaseScript.Run(ctx, r.client, []string{r.claimKey(k)}, token).Err(); err != nil {
		return fmt.Errorf("redis release claim: %w", err)
	}
	return nil
}

// Claimed reports whether any instance holds the key's claim.
func (r *Redis) Claimed(ctx context.Context, k Key) (bool, error) {
	n, err := r.client.Exists(ctx, r.claimKey(k)).Result()
	if err != nil {
		return false, fmt.Errorf("redis claimed: %w", err)
	}
	return n == 1, nil
}
