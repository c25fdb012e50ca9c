package server

import (
	"encoding/base64"
	"encoding/json"
	"image"
	"net/http"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/compat"
)

// background "transparent": refused where no alpha exists, and on an edit
// with a mask the input's alpha comes back in the kept pixels.
func TestTransparentBackground(t *testing.T) {
	gen := editFake()
	ts := startServer(t, gen)
	cutout := image.Rect(0, 0, 8, 8) // transparent in the input, kept by the mask
	hole := image.Rect(16, 16, 24, 24)
	input := encodeTo(t, "png", testPicture(32, 32, cutout))
	mask := encodeTo(t, "png", maskPicture(32, 32, hole))

	refusals := []struct {
		name, param, text string
		r                 rawResponse
	}{
		{"generation", "background", "Stable Diffusion paints opaque pixels",
			postJSON(t, ts.Client(), ts.URL, `{"prompt":"p","model":"gpt-image-1","background":"transparent"}`)},
		{"edit without a mask", "background", "needs a mask", postForm(t, ts, "/v1/images/edits", filePart("image", input),
			textPart("prompt", "p"), textPart("model", "gpt-image-1.5"), textPart("background", "transparent"))},
		{"edit as JPEG", "output_format", "'png' or 'webp'", postForm(t, ts, "/v1/images/edits", filePart("image", input),
			filePart("mask", mask), textPart("prompt", "p"), textPart("model", "gpt-image-1.5"),
			textPart("background", "transparent"), textPart("output_format", "jpeg"))},
	}
	for _, tt := range refusals {
		if tt.r.status != http.StatusBadRequest {
			t.Fatalf("%s: status %d: %.300s", tt.name, tt.r.status, tt.r.body)
		}
		if e := envelope(t, tt.r); deref(e.Param) != tt.param || deref(e.Code) != compat.CodeInvalidValue || !strings.Contains(e.Message, tt.text) {
			t.Errorf("%s: param %s code %s (%s), want %s containing %q", tt.name, deref(e.Param), deref(e.Code), e.Message, tt.param, tt.text)
		}
	}

	for _, format := range []string{"png", "webp"} {
		r := postForm(t, ts, "/v1/images/edits", filePart("image", input), filePart("mask", mask), textPart("prompt", "p"),
			textPart("model", "sd-tiny"), textPart("background", "transparent"), textPart("output_format", format))
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d: %.300s", format, r.status, r.body)
		}
		var resp compat.ImagesResponse
		if err := json.Unmarshal(r.body, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Background != compat.BackgroundTransparent {
			t.Errorf("%s: background echoed %q", format, resp.Background)
		}
		data, err := base64.StdEncoding.DecodeString(resp.Data[0].B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeImage(t, data)
		alpha := func(x, y int) uint32 { _, _, _, a := img.At(x, y).RGBA(); return a >> 8 }
		if a := alpha(2, 2); a != 0 {
			t.Errorf("%s: kept transparent pixel has alpha %d, want 0", format, a)
		}
		if a := alpha(20, 20); a != 255 {
			t.Errorf("%s: repainted pixel has alpha %d, want 255", format, a)
		}
		if a := alpha(28, 28); a != 255 {
			t.Errorf("%s: kept opaque pixel has alpha %d, want 255", format, a)
		}
	}
}

func TestRestoreAlpha(t *testing.T) {
	dst := image.NewRGBA(image.Rect(0, 0, 2, 1))
	copy(dst.Pix, []uint8{200, 100, 50, 255, 200, 100, 50, 255})
	a := image.NewAlpha(dst.Rect)
	a.Pix[0], a.Pix[1] = 128, 0
	mask := image.NewGray(dst.Rect)
	mask.Pix[1] = 255 // the second pixel was repainted: stays opaque
	restoreAlpha(dst, a, mask)
	want := []uint8{100, 50, 25, 128, 200, 100, 50, 255}
	for i := range want {
		if dst.Pix[i] != want[i] {
			t.Fatalf("pixels %v, want %v", dst.Pix, want)
		}
	}
}
