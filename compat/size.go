package compat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSize: a size string is not "WxH" with positive decimal integers.
var ErrBadSize = errors.New("size must be WIDTHxHEIGHT")

// MaxSide bounds either side of an explicit WxH; the model's own limits are
// checked later by the pipeline.
const MaxSide = 4096

// ParseSize reads "WxH" (for example "1024x1536") strictly: ASCII digits
// only, no signs, spaces or leading zeros, both sides 1..MaxSide.
func ParseSize(s string) (width, height int, err error) {
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadSize, s)
	}
	if width, err = parseSide(ws); err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadSize, s)
	}
	if height, err = parseSide(hs); err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadSize, s)
	}
	return width, height, nil
}

func parseSide(s string) (int, error) {
	if s == "" || len(s) > 4 || s[0] == '0' {
		return 0, ErrBadSize
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, ErrBadSize
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v > MaxSide {
		return 0, ErrBadSize
	}
	return v, nil
}

// FormatSize is the inverse of ParseSize.
func FormatSize(width, height int) string { return fmt.Sprintf("%dx%d", width, height) }
