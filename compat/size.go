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
func FormatSize(width, height int) string {
	var b [24]byte
	return string(strconv.AppendInt(append(strconv.AppendInt(b[:0], int64(width), 10), 'x'), int64(height), 10))
}

// The sizes "auto" delivers for the OpenAI families: upstream answers
// 1024x1024, or the landscape / portrait size when the input leans that
// way (edits).
const (
	AutoSquare    = "1024x1024"
	AutoLandscape = "1536x1024"
	AutoPortrait  = "1024x1536"
)

// autoLean is how far an input's aspect must lean from square before
// "auto" follows it: halfway, in log scale, between 1:1 and 3:2.
const autoLean = 1.2247 // sqrt(1.5)

// AutoSize is what "auto" delivers for family f: a 1024-class size for
// every OpenAI family that has "auto", picked by the input image's aspect
// when there is one (inW, inH > 0; 0, 0 for a generation). ok is false for
// FamilyLocal, whose "auto" is the model's own size (or the input's).
func AutoSize(f Family, inW, inH int) (w, h int, ok bool) {
	if f == FamilyLocal || f == FamilyDallE2 || f == FamilyDallE3 {
		return 0, 0, false
	}
	size := AutoSquare
	if inW > 0 && inH > 0 {
		aspect := float64(inW) / float64(inH)
		switch {
		case aspect >= autoLean:
			size = AutoLandscape
		case aspect <= 1/autoLean:
			size = AutoPortrait
		}
	}
	w, h, _ = ParseSize(size)
	return w, h, true
}
