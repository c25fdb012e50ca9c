package compat

import (
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Data URL errors. ParseDataURL wraps one of them; the JSON edit decoder
// turns them into *Error naming the field.
var (
	ErrNotDataURL      = errors.New("not a data URL")
	ErrDataURLEncoding = errors.New("data URL is not base64")
	ErrDataURLType     = errors.New("data URL is not an image")
	ErrDataURLTooLarge = errors.New("data URL is too large")
)

// ParseDataURL decodes an RFC 2397 URL of an image,
// "data:image/png;base64,....", into its media type and bytes. Only base64
// payloads of an image/* type are accepted (what every SDK sends); line
// breaks inside the payload are ignored, padding is optional. A payload
// that would decode to more than maxBytes is refused before it is decoded.
func ParseDataURL(s string, maxBytes int64) (mediaType string, data []byte, err error) {
	const scheme = "data:"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return "", nil, ErrNotDataURL
	}
	meta, payload, ok := strings.Cut(s[len(scheme):], ",")
	if !ok {
		return "", nil, fmt.Errorf("%w: no comma before the payload", ErrNotDataURL)
	}
	meta, isBase64 := strings.CutSuffix(meta, ";base64")
	if !isBase64 {
		return "", nil, ErrDataURLEncoding
	}
	mediaType, _, err = mime.ParseMediaType(meta)
	if err != nil || !strings.HasPrefix(mediaType, "image/") {
		return "", nil, fmt.Errorf("%w: media type %q", ErrDataURLType, clip(meta))
	}
	// Line breaks cost nothing after decoding, so bound the bytes that count.
	payload = strings.TrimRight(payload, "=\r\n")
	significant := int64(len(payload) - strings.Count(payload, "\n") - strings.Count(payload, "\r"))
	if significant*3/4 > maxBytes {
		return "", nil, fmt.Errorf("%w: over %d bytes", ErrDataURLTooLarge, maxBytes)
	}
	payload = strings.NewReplacer("\r", "", "\n", "").Replace(payload)
	data, err = base64.RawStdEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrDataURLEncoding, err)
	}
	return mediaType, data, nil
}
