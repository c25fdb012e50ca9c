package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"path"
	"strings"
	"time"
)

const (
	// SecretPrefix starts every key sdgate makes, as OpenAI's keys do.
	SecretPrefix = "sk-"
	// secretChars random base62 characters carry 43*log2(62) = 256.03 bits.
	secretChars = 43
	base62      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// maxSecretLen bounds what Authenticate hashes: longer is never a key.
	maxSecretLen = 256
	// HashSize is the length of Key.Hash.
	HashSize = sha256.Size
)

// Limits bound what one key may use. Zero means unlimited.
type Limits struct {
	RequestsPerMinute int
	ImagesPerMinute   int
	ImagesPerDay      int   // per UTC day
	ImageQuota        int64 // images over the key's lifetime
}

// Key is an API key as stored: never its secret, only the secret's hash.
type Key struct {
	ID         string
	Name       string
	Hint       string // the masked secret, e.g. "sk-ab***xyz", for listings
	Hash       []byte `json:"-"` // SHA-256 of the secret
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
	ExpiresAt  time.Time // zero: never expires
	RevokedAt  time.Time // zero: not revoked
	Limits     Limits
	Models     []string // model names or path.Match patterns; empty: every model
	Admin      bool
	Static     bool // from SDGATE_API_KEYS: lives in memory only
}

// Revoked reports whether the key was revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Active reports whether the key may authenticate at now.
func (k *Key) Active(now time.Time) bool { return !k.Revoked() && !k.Expired(now) }

// CanUse reports whether the key may use model. The server can also filter
// GET /v1/models with it, so a key does not see models it cannot use.
func (k *Key) CanUse(model string) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, pattern := range k.Models {
		if ok, err := path.Match(pattern, model); err == nil && ok {
			return true
		}
	}
	return false
}

// KeySpec is what CreateKey needs to make a key.
type KeySpec struct {
	Name      string
	Limits    Limits
	Models    []string
	Admin     bool
	ExpiresAt time.Time // zero: never
}

const maxNameLen = 100

func (s KeySpec) validate(now time.Time) error {
	switch {
	case strings.TrimSpace(s.Name) == "":
		return fmt.Errorf("%w: a name is required", ErrInvalidKeySpec)
	case len(s.Name) > maxNameLen:
		return fmt.Errorf("%w: name longer than %d bytes", ErrInvalidKeySpec, maxNameLen)
	case s.Limits.RequestsPerMinute < 0 || s.Limits.ImagesPerMinute < 0 ||
		s.Limits.ImagesPerDay < 0 || s.Limits.ImageQuota < 0:
		return fmt.Errorf("%w: limits must not be negative (0 means unlimited)", ErrInvalidKeySpec)
	case !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now):
		return fmt.Errorf("%w: expiry %s is not in the future", ErrInvalidKeySpec, s.ExpiresAt.Format(time.RFC3339))
	}
	for _, m := range s.Models {
		if strings.TrimSpace(m) == "" {
			return fmt.Errorf("%w: empty model name", ErrInvalidKeySpec)
		}
		if _, err := path.Match(m, ""); err != nil {
			return fmt.Errorf("%w: model pattern %q: %v", ErrInvalidKeySpec, m, err)
		}
	}
	return nil
}

// newSecret returns "sk-" and 43 uniformly drawn base62 characters.
func newSecret() string {
	return SecretPrefix + randomBase62(secretChars)
}

// randomBase62 draws n characters by rejection sampling, so each of the 62
// is equally likely (b%62 over all 256 byte values would favour the first 8).
func randomBase62(n int) string {
	const accept = 256 - 256%len(base62) // 248
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never returns an error
		for _, b := range buf {
			if int(b) < accept && len(out) < n {
				out = append(out, base62[int(b)%len(base62)])
			}
		}
	}
	return string(out)
}

// HashSecret is what the store keeps of a secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// hashesEqual compares in constant time, so a timing probe learns nothing
// about how much of a stored hash it matched.
func hashesEqual(a, b []byte) bool {
	return len(a) == HashSize && subtle.ConstantTimeCompare(a, b) == 1
}

// Mask shows enough of a key to recognise it and too little to use it, as
// OpenAI does in its 401 message: the first five and last three characters
// ("sk-ab***xyz"). Short strings are masked whole.
func Mask(secret string) string {
	const head, tail = 5, 3
	if len(secret) < 2*(head+tail) {
		return "***"
	}
	return secret[:head] + "***" + secret[len(secret)-tail:]
}

// newID makes a key id in OpenAI's style ("key_" and random characters).
func newID() string { return "key_" + randomBase62(16) }
