// Package urlstore keeps the images of response_format=url responses until
// their URLs expire: Memory for one process (the default), Redis shared by
// every gateway, so a URL minted by one is served by any other.
package urlstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Errors.
var (
	// ErrBadOptions: a constructor refused its options.
	ErrBadOptions = errors.New("bad url store options")
	// ErrTooLarge: an image, or one response's images together, exceed
	// the store's bounds and were not stored.
	ErrTooLarge = errors.New("image too large for the url store")
)

// Image is one stored image.
type Image struct {
	Data        []byte
	ContentType string
	Expires     time.Time
}

// Defaults.
const (
	DefaultTTL      = 60 * time.Minute
	DefaultMaxBytes = 1 << 30
	// DefaultMaxImageBytes bounds one image in Redis: encoded images are a
	// few MB; anything far larger is a bug, not a picture.
	DefaultMaxImageBytes = 64 << 20
)

// maxExtLen bounds the extension part of a name (png, jpeg, webp).
const maxExtLen = 8

// newName is 128 random bits in hex plus "." + ext: knowing a name is the
// permission to fetch its image.
func newName(ext string) string {
	var token [16]byte
	rand.Read(token[:]) // never fails: crypto/rand crashes the program instead
	var name [32 + 1 + maxExtLen]byte
	hex.Encode(name[:32], token[:])
	name[32] = '.'
	n := 33 + copy(name[33:], ext) // validExt bounded ext to maxExtLen
	return string(name[:n])
}

// ValidName reports whether name has the shape newName gives (32 lower-case
// hex digits, a dot, a short lower-case extension), so lookups of anything
// else cost no store round trip and cannot address other keys.
func ValidName(name string) bool {
	if len(name) < 34 || len(name) > 33+maxExtLen || name[32] != '.' {
		return false
	}
	for i := 0; i < 32; i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return validExt(name[33:])
}

func validExt(ext string) bool {
	if ext == "" || len(ext) > maxExtLen {
		return false
	}
	for i := 0; i < len(ext); i++ {
		if c := ext[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
