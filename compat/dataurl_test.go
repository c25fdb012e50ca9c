package compat

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParseDataURL(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nrest")
	b64 := base64.StdEncoding.EncodeToString(png)
	lined := b64[:8] + "\r\n" + b64[8:] + "\n"
	tests := []struct {
		name     string
		url      string
		max      int64
		wantType string
		wantErr  error
	}{
		{"png", "data:image/png;base64," + b64, 100, "image/png", nil},
		{"upper-case scheme, parameters", "DATA:image/jpeg;name=x.jpg;base64," + b64, 100, "image/jpeg", nil},
		{"no padding", "data:image/webp;base64," + strings.TrimRight(b64, "="), 100, "image/webp", nil},
		{"line breaks", "data:image/png;base64," + lined, 100, "image/png", nil},
		{"exactly the limit", "data:image/png;base64," + b64, int64(len(png)), "image/png", nil},

		{"one byte over", "data:image/png;base64," + b64, int64(len(png)) - 1, "", ErrDataURLTooLarge},
		{"http URL", "https://example.com/a.png", 100, "", ErrNotDataURL},
		{"empty", "", 100, "", ErrNotDataURL},
		{"no comma", "data:image/png;base64", 100, "", ErrNotDataURL},
		{"percent-encoded payload", "data:image/png,%89PNG", 100, "", ErrDataURLEncoding},
		{"text type", "data:text/plain;base64," + b64, 100, "", ErrDataURLType},
		{"no type", "data:;base64," + b64, 100, "", ErrDataURLType},
		{"bad base64", "data:image/png;base64,@@@@", 100, "", ErrDataURLEncoding},
		{"url-safe alphabet", "data:image/png;base64,-_-_", 100, "", ErrDataURLEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, data, err := ParseDataURL(tt.url, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mt != tt.wantType || !bytes.Equal(data, png) {
				t.Errorf("got %q %q", mt, data)
			}
		})
	}
}

// FuzzParseDataURL: any string either fails with one of the sentinels or
// gives an image type and at most max bytes that re-encode to the input's
// payload.
func FuzzParseDataURL(f *testing.F) {
	for _, s := range []string{
		"data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,iVBORw0KGgo", "data:,", "data:image/png,abc",
		"data:image/png;base64,\n\n", "data:image/png;base64,====", "data:image/;base64,AA", "data:image/png;x=\"y\";base64,AAAA",
	} {
		f.Add(s, int64(16))
	}
	sentinels := []error{ErrNotDataURL, ErrDataURLEncoding, ErrDataURLType, ErrDataURLTooLarge}
	f.Fuzz(func(t *testing.T, s string, max int64) {
		mt, data, err := ParseDataURL(s, max)
		if err != nil {
			for _, want := range sentinels {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if !strings.HasPrefix(mt, "image/") || int64(len(data)) > max {
			t.Fatalf("ParseDataURL(%q, %d) = %q, %d bytes", s, max, mt, len(data))
		}
	})
}
