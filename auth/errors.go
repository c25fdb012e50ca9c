package auth

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels; the package documentation says which HTTP answer each one gets.
var (
	ErrMissingKey      = errors.New("no API key provided")
	ErrInvalidKey      = errors.New("incorrect API key")
	ErrRevoked         = errors.New("API key revoked")
	ErrExpired         = errors.New("API key expired")
	ErrModelNotAllowed = errors.New("model not allowed for this key")
	ErrQuotaExceeded   = errors.New("quota exceeded")
	ErrNotAdmin        = errors.New("this operation needs an admin key")
	ErrKeyNotFound     = errors.New("key not found")
	ErrInvalidKeySpec  = errors.New("invalid key specification")
	ErrStaticKey       = errors.New("key comes from SDGATE_API_KEYS")
	ErrClosed          = errors.New("store closed")
	ErrFinished        = errors.New("admission already finished")
)

// KeyError is why a request did not authenticate. Reason is one of
// ErrMissingKey, ErrInvalidKey, ErrRevoked, ErrExpired; Error() is the
// message for the client.
type KeyError struct {
	Reason    error
	Masked    string    // Mask of the key the client sent; "" when none
	ExpiredAt time.Time // with ErrExpired
}

func (e *KeyError) Unwrap() error { return e.Reason }

func (e *KeyError) Error() string {
	switch e.Reason {
	case ErrMissingKey:
		return "You didn't provide an API key. You need to provide your API key in an " +
			"Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
	case ErrRevoked:
		return fmt.Sprintf("The API key %s has been revoked.", e.Masked)
	case ErrExpired:
		return fmt.Sprintf("The API key %s expired at %s.", e.Masked, e.ExpiredAt.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("Incorrect API key provided: %s. Keys are shown only once, when "+
			"they are created: ask this server's administrator for one (sdgate keys create).", e.Masked)
	}
}

// ModelError is a model the key may not use; it wraps ErrModelNotAllowed.
type ModelError struct{ Model string }

func (e *ModelError) Unwrap() error { return ErrModelNotAllowed }

func (e *ModelError) Error() string {
	return fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", e.Model)
}

// Names of the per-minute limits, as RateLimitError.Limit reports them.
const (
	LimitRequests = "requests"
	LimitImages   = "images"
)

// RateLimitError is a per-minute limit hit: 429 rate_limit_exceeded.
type RateLimitError struct {
	Limit      string // LimitRequests or LimitImages
	Max        int    // the limit per minute
	Used       int    // spent in the current window (Max minus what is left)
	Requested  int
	RetryAfter time.Duration // when Requested fits again; 0 with TooLarge
	// TooLarge: Requested exceeds Max, so no wait helps.
	TooLarge bool
	// Headers are the key's x-ratelimit-* values, for the 429 response too.
	Headers RateHeaders
}

func (e *RateLimitError) Error() string {
	unit := "requests per min (RPM)"
	if e.Limit == LimitImages {
		unit = "images per min (IPM)"
	}
	if e.TooLarge {
		return fmt.Sprintf("Request too large for %s: Limit %d, Requested %d. "+
			"Ask for fewer images or for a higher limit.", unit, e.Max, e.Requested)
	}
	return fmt.Sprintf("Rate limit reached for %s: Limit %d, Used %d, Requested %d. "+
		"Please try again in %s.", unit, e.Max, e.Used, e.Requested, formatReset(e.RetryAfter))
}

// Names of the quotas, as QuotaError.Quota reports them.
const (
	QuotaDaily = "images per day"
	QuotaTotal = "total images"
)

// QuotaError is an exhausted quota: 429 insufficient_quota. It wraps
// ErrQuotaExceeded.
type QuotaError struct {
	Quota     string // QuotaDaily or QuotaTotal
	Limit     int64
	Used      int64 // including images of requests still running
	Requested int
	ResetAt   time.Time // start of the next UTC day for QuotaDaily; zero for QuotaTotal
}

func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

func (e *QuotaError) Error() string {
	msg := fmt.Sprintf("You exceeded your current quota of %d %s (used %d, requested %d)",
		e.Limit, e.Quota, e.Used, e.Requested)
	if e.ResetAt.IsZero() {
		return msg + "; ask this server's administrator for more."
	}
	return msg + "; it resets at " + e.ResetAt.UTC().Format(time.RFC3339) + "."
}
