package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"github.com/gen2brain/webp"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	openai "github.com/sashabaranov/go-openai"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// editFake is the fake pipeline where sd-tiny (64x64) has a VAE encoder and
// sd-turbo has none. Aliases map to sd-tiny.
func editFake() *fakeGenerator {
	g := newFakeGenerator()
	g.models[0].CanEncode = true
	return g
}

// testPicture is an opaque w x h picture, fully transparent inside hole.
func testPicture(w, h int, hole image.Rectangle) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if (image.Point{x, y}).In(hole) {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 7), uint8(y * 13), uint8(x ^ y), a})
		}
	}
	return img
}

// maskPicture is a w x h mask: transparent (repaint) inside hole.
func maskPicture(w, h int, hole image.Rectangle) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if !(image.Point{x, y}).In(hole) {
				m.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255})
			}
		}
	}
	return m
}

func encodeTo(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "webp":
		err = webp.Encode(&buf, img, webp.Options{Lossless: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// formPart is one part of a multipart test body; a file when filename or
// contentType is set.
type formPart struct {
	name, filename, contentType string
	data                        []byte
}

func filePart(name string, data []byte) formPart {
	return formPart{name: name, contentType: "application/octet-stream", data: data}
}

func textPart(name, value string) formPart { return formPart{name: name, data: []byte(value)} }

func multipartBody(t testing.TB, parts ...formPart) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disposition := fmt.Sprintf("form-data; name=%q", p.name)
		if p.filename != "" || p.contentType != "" {
			disposition += fmt.Sprintf("; filename=%q", p.filename)
			h.Set("Content-Type", p.contentType)
		}
		h.Set("Content-Disposition", disposition)
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

func postForm(t *testing.T, ts *httptest.Server, path string, parts ...formPart) rawResponse {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	return do(t, ts.Client(), http.MethodPost, ts.URL+path, ct, string(body))
}

func TestEditErrorsOverHTTP(t *testing.T) {
	gen := editFake()
	ts := startServer(t, gen)
	square := encodeTo(t, "png", testPicture(32, 32, image.Rect(0, 0, 8, 8)))
	wide := encodeTo(t, "png", testPicture(48, 32, image.Rectangle{}))
	mask := encodeTo(t, "png", maskPicture(32, 32, image.Rect(4, 4, 12, 12)))
	img := func(data []byte) formPart { return filePart("image", data) }
	prompt := textPart("prompt", "a hat")
	many := func(n int) []formPart {
		parts := []formPart{prompt, textPart("model", "gpt-image-1")}
		for range n {
			parts = append(parts, filePart("image[]", square))
		}
		return parts
	}
	tests := []struct {
		name      string
		path      string
		parts     []formPart
		wantParam string
		wantCode  string
	}{
		{"missing image", "/v1/images/edits", []formPart{prompt}, "image", "missing_required_parameter"},
		{"missing prompt", "/v1/images/edits", []formPart{img(square)}, "prompt", "missing_required_parameter"},
		{"not an image", "/v1/images/edits", []formPart{img([]byte("GIF89a....")), prompt}, "image", "invalid_image_format"},
		{"corrupt PNG", "/v1/images/edits", []formPart{img(square[:60]), prompt}, "image", "invalid_image"},
		{"picture beyond 4096 px", "/v1/images/edits", []formPart{img(pngHeader(5000, 5000)), prompt}, "image", "image_too_large"},
		{"dall-e-2 over 4 MiB", "/v1/images/edits", []formPart{img(bytes.Repeat([]byte{1}, compat.MaxDallE2ImageBytes+1)), prompt, textPart("model", "dall-e-2")}, "image", "image_too_large"},
		{"dall-e-2 not square", "/v1/images/edits", []formPart{img(wide), prompt, textPart("model", "dall-e-2")}, "image", "invalid_image"},
		{"mask not a PNG", "/v1/images/edits", []formPart{img(square), filePart("mask", encodeTo(t, "jpeg", maskPicture(32, 32, image.Rectangle{}))), prompt}, "mask", "invalid_image_format"},
		{"mask of another size", "/v1/images/edits", []formPart{img(square), filePart("mask", encodeTo(t, "png", maskPicture(16, 16, image.Rect(0, 0, 4, 4)))), prompt}, "mask", "invalid_image"},
		{"mask without transparency", "/v1/images/edits", []formPart{img(square), filePart("mask", encodeTo(t, "png", maskPicture(32, 32, image.Rectangle{}))), prompt}, "mask", "invalid_image"},
		{"two masks", "/v1/images/edits", []formPart{img(square), filePart("mask", mask), filePart("mask", mask), prompt}, "mask", "invalid_value"},
		{"seventeen images", "/v1/images/edits", many(17), "image", "invalid_value"},
		{"two images: one init image only", "/v1/images/edits", many(2), "image", "invalid_value"},
		{"dall-e-3 has no edits", "/v1/images/edits", []formPart{img(square), prompt, textPart("model", "dall-e-3")}, "model", "invalid_value"},
		{"model without a VAE encoder", "/v1/images/edits", []formPart{img(square), prompt, textPart("model", "sd-turbo")}, "model", "invalid_value"},
		{"unknown field", "/v1/images/edits", []formPart{img(square), prompt, textPart("style", "vivid")}, "style", "unknown_parameter"},
		{"n as words", "/v1/images/edits", []formPart{img(square), prompt, textPart("n", "two")}, "n", "invalid_type"},
		{"strength 0", "/v1/images/edits", []formPart{img(square), prompt, textPart("strength", "0")}, "strength", "invalid_value"},
		{"dall-e-2 size", "/v1/images/edits", []formPart{img(square), prompt, textPart("model", "dall-e-2"), textPart("size", "1536x1024")}, "size", "invalid_value"},
		{"gpt-image-1 transparent background", "/v1/images/edits", []formPart{img(square), prompt, textPart("model", "gpt-image-1"), textPart("background", "transparent")}, "background", "invalid_value"},
		{"variation without image", "/v1/images/variations", []formPart{textPart("n", "1")}, "image", "missing_required_parameter"},
		{"variation of gpt-image-1", "/v1/images/variations", []formPart{img(square), textPart("model", "gpt-image-1")}, "model", "invalid_value"},
		{"variation not square", "/v1/images/variations", []formPart{img(wide)}, "image", "invalid_image"},
		{"variation with a mask", "/v1/images/variations", []formPart{img(square), filePart("mask", mask)}, "mask", "unknown_parameter"},
		{"variation with two images", "/v1/images/variations", []formPart{img(square), img(square)}, "image", "invalid_value"},
		{"variation without encoder", "/v1/images/variations", []formPart{img(wide), textPart("model", "sd-turbo")}, "model", "invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postForm(t, ts, tt.path, tt.parts...)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			e := envelope(t, r)
			if e.Type != compat.TypeInvalidRequest || deref(e.Param) != tt.wantParam || deref(e.Code) != tt.wantCode {
				t.Errorf("param %s code %s, want %s %s (%s)", deref(e.Param), deref(e.Code), tt.wantParam, tt.wantCode, e.Message)
			}
		})
	}
	if n := gen.calls.Load(); n != 0 {
		t.Errorf("generator called %d times, want 0", n)
	}
}

// pngHeader is a PNG signature and IHDR chunk declaring a w x h RGBA
// picture, with no pixels: enough for DecodeConfig, nothing to decode.
func pngHeader(w, h int) []byte {
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestEditRequestShapes(t *testing.T) {
	ts := startServer(t, editFake(), func(o *Options) { o.BodyLimit = 1024 })
	tests := []struct {
		name       string
		path       string
		body       []byte
		ct         string
		wantStatus int
		wantCode   string
	}{
		{"JSON body without images", "/v1/images/edits", []byte(`{"prompt":"x"}`), "application/json", 400, "missing_required_parameter"},
		{"JSON body, bad JSON", "/v1/images/edits", []byte(`{"prompt":`), "application/json", 400, "<null>"},
		{"text body", "/v1/images/edits", []byte(`x`), "text/plain", 400, "<null>"},
		{"JSON variation", "/v1/images/variations", []byte(`{"prompt":"x"}`), "application/json", 400, "<null>"},
		{"no boundary", "/v1/images/variations", []byte("x"), "multipart/form-data", 400, "<null>"},
		{"truncated multipart", "/v1/images/edits", []byte("--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx"), "multipart/form-data; boundary=b", 400, "<null>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, ts.Client(), http.MethodPost, ts.URL+tt.path, tt.ct, string(tt.body))
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if e := envelope(t, r); deref(e.Code) != tt.wantCode {
				t.Errorf("code %s, want %s", deref(e.Code), tt.wantCode)
			}
		})
	}
}

// Uploads are not held to the JSON body limit, only to UploadLimit.
func TestUploadBodyLimit(t *testing.T) {
	ts := startServer(t, editFake(), func(o *Options) { o.BodyLimit = 1024 })
	big := encodeTo(t, "png", noisePicture(512, 512)) // about 1 MB, over the JSON limit
	r := postForm(t, ts, "/v1/images/edits", filePart("image", big), textPart("prompt", "p"),
		textPart("model", "gpt-image-1"), textPart("size", "1024x1024"))
	if r.status != http.StatusOK {
		t.Fatalf("a %d-byte upload: status %d: %.300s", len(big), r.status, r.body)
	}

	body, ct := multipartBody(t, filePart("image", make([]byte, UploadLimit)), textPart("prompt", "p"))
	r = do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", ct, string(body))
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over UploadLimit: status %d: %.300s", r.status, r.body)
	}
	if e := envelope(t, r); deref(e.Code) != "request_too_large" {
		t.Errorf("code %s", deref(e.Code))
	}

	// Chunked, so the limit trips while the parts are read: parts each
	// within their own limit, together over UploadLimit.
	half := make([]byte, UploadLimit/2+1)
	body, ct = multipartBody(t, filePart("image[]", half), filePart("image[]", half))
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/images/variations",
		io.MultiReader(bytes.NewReader(body[:len(body)/2]), bytes.NewReader(body[len(body)/2:])))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over UploadLimit: status %d", resp.StatusCode)
	}
}

func noisePicture(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(1)
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = uint8(x)
	}
	return img
}

// What reaches the pipeline: the image and mask at the generation size,
// the strength, and the delivered size.
func TestEditsReachThePipeline(t *testing.T) {
	gen := editFake()
	ts := startServer(t, gen)
	hole := image.Rect(8, 8, 24, 16)
	holed := testPicture(32, 32, hole)
	opaque := testPicture(32, 32, image.Rectangle{})
	tests := []struct {
		name         string
		path         string
		parts        []formPart
		wantGen      image.Point // generation size (sd-tiny is 64x64 native)
		wantOut      image.Point
		wantMask     bool
		wantStrength float64
		wantPrompt   string
		wantURL      bool
	}{
		{"go-openai dall-e-2 with mask: n=0, empty size and format", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "png", opaque)), filePart("mask", encodeTo(t, "png", maskPicture(32, 32, hole))),
			textPart("prompt", "a hat"), textPart("model", "dall-e-2"), textPart("n", "0"), textPart("size", ""), textPart("response_format", ""),
		}, image.Pt(64, 64), image.Pt(1024, 1024), true, 1, "a hat", true},
		{"transparent pixels are the mask", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "png", holed)), textPart("prompt", "p"), textPart("model", "gpt-image-1"),
		}, image.Pt(64, 64), image.Pt(1024, 1024), true, 1, "p", false},
		{"JPEG without mask: whole image at the default strength", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "jpeg", opaque)), textPart("prompt", "p"), textPart("model", "gpt-image-1"),
			textPart("size", "1536x1024"),
		}, image.Pt(80, 56), image.Pt(1536, 1024), false, spec.DefaultStrength, "p", false},
		{"WebP, local model, exact size, strength", "/v1/images/edits", []formPart{
			filePart("image[]", encodeTo(t, "webp", testPicture(48, 32, image.Rectangle{}))), textPart("prompt", "p"),
			textPart("model", "sd-tiny"), textPart("size", "96x64"), textPart("strength", "0.5"),
		}, image.Pt(96, 64), image.Pt(96, 64), false, 0.5, "p", false},
		{"wide input, auto: 1536x1024 generated near the native size", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "png", testPicture(200, 100, image.Rectangle{}))), textPart("prompt", "p"),
			textPart("model", "gpt-image-1"), textPart("size", "auto"),
		}, image.Pt(80, 56), image.Pt(1536, 1024), false, spec.DefaultStrength, "p", false},
		{"tall input, auto: 1024x1536", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "png", testPicture(60, 100, image.Rectangle{}))), textPart("prompt", "p"),
			textPart("model", "gpt-image-2"),
		}, image.Pt(56, 80), image.Pt(1024, 1536), false, spec.DefaultStrength, "p", false},
		{"local model, auto: the input's own size", "/v1/images/edits", []formPart{
			filePart("image", encodeTo(t, "png", testPicture(200, 100, image.Rectangle{}))), textPart("prompt", "p"),
			textPart("model", "sd-tiny"),
		}, image.Pt(88, 48), image.Pt(200, 100), false, spec.DefaultStrength, "p", false},
		{"variation: default strength, empty prompt", "/v1/images/variations", []formPart{
			filePart("image", encodeTo(t, "png", opaque)), textPart("n", "2"), textPart("size", "256x256"),
		}, image.Pt(64, 64), image.Pt(256, 256), false, VariationStrength, "", true},
		{"variation with prompt and strength on a local model", "/v1/images/variations", []formPart{
			filePart("image", encodeTo(t, "png", testPicture(48, 32, image.Rectangle{}))), textPart("model", "sd-tiny"),
			textPart("prompt", "bluer"), textPart("strength", "0.3"),
		}, image.Pt(80, 56), image.Pt(48, 32), false, 0.3, "bluer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postForm(t, ts, tt.path, tt.parts...)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %.300s", r.status, r.body)
			}
			req := gen.lastRequest()
			if req.Width != tt.wantGen.X || req.Height != tt.wantGen.Y {
				t.Errorf("generates %dx%d, want %v", req.Width, req.Height, tt.wantGen)
			}
			if req.InitImage == nil || req.InitImage.Bounds().Size() != tt.wantGen {
				t.Fatalf("init image %v, want %v", boundsOf(req.InitImage), tt.wantGen)
			}
			if (req.Mask != nil) != tt.wantMask {
				t.Errorf("mask %v, want present=%v", req.Mask != nil, tt.wantMask)
			}
			if req.Mask != nil {
				checkBinaryMask(t, req.Mask, tt.wantGen)
			}
			if !req.HasStrength || req.Strength != tt.wantStrength {
				t.Errorf("strength %v (set %v), want %v", req.Strength, req.HasStrength, tt.wantStrength)
			}
			if req.Prompt != tt.wantPrompt {
				t.Errorf("prompt %q, want %q", req.Prompt, tt.wantPrompt)
			}
			var resp compat.ImagesResponse
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.Data {
				if tt.wantURL != (d.URL != "") {
					t.Errorf("url %q, want url=%v", d.URL, tt.wantURL)
				}
				data := imageBytes(t, ts.Client(), openai.ImageResponseDataInner{URL: d.URL, B64JSON: d.B64JSON})
				got, _ := decodeImage(t, data)
				if got.Bounds().Size() != tt.wantOut {
					t.Errorf("delivered %v, want %v", got.Bounds().Size(), tt.wantOut)
				}
			}
		})
	}
}

func boundsOf(img image.Image) any {
	if img == nil {
		return "none"
	}
	return img.Bounds()
}

func checkBinaryMask(t *testing.T, m *image.Gray, size image.Point) {
	t.Helper()
	if m.Rect.Size() != size {
		t.Fatalf("mask %v, want %v", m.Rect, size)
	}
	repaint := 0
	for _, v := range m.Pix {
		switch v {
		case compat.MaskRepaint:
			repaint++
		case compat.MaskKeep:
		default:
			t.Fatalf("mask value %d is not binary", v)
		}
	}
	if repaint == 0 || repaint == len(m.Pix) {
		t.Errorf("mask repaints %d of %d pixels", repaint, len(m.Pix))
	}
}

func TestEditUsageCountsTheInputImage(t *testing.T) {
	ts := startServer(t, editFake())
	r := postForm(t, ts, "/v1/images/edits", filePart("image", encodeTo(t, "png", testPicture(32, 32, image.Rectangle{}))),
		textPart("prompt", "a hat"), textPart("model", "gpt-image-1"), textPart("quality", "low"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	u := resp.Usage
	if u == nil {
		t.Fatal("no usage for gpt-image-1")
	}
	// The input at the generation size (64x64) at low quality: one 64 px
	// patch plus one along the side; the output 1024x1024 low: 272.
	want := compat.ImageUsage{InputTokens: u.InputTokensDetails.TextTokens + 2, OutputTokens: 272,
		TotalTokens:         u.InputTokensDetails.TextTokens + 274,
		InputTokensDetails:  compat.InputTokensDetails{TextTokens: u.InputTokensDetails.TextTokens, ImageTokens: 2},
		OutputTokensDetails: &compat.OutputTokensDetails{ImageTokens: 272}}
	if !reflect.DeepEqual(*u, want) || u.InputTokensDetails.TextTokens == 0 {
		t.Errorf("usage %+v, want %+v", *u, want)
	}
	if resp.Size != "1024x1024" || resp.Quality != "low" {
		t.Errorf("echo size %q quality %q", resp.Size, resp.Quality)
	}
}

// Cache keys hold the image and mask digests: the same upload hits, a
// different mask or image misses.
func TestEditCacheKeys(t *testing.T) {
	mem, err := cache.NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(mem, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, editFake(), func(o *Options) { o.Cache = c })
	img := encodeTo(t, "png", testPicture(32, 32, image.Rectangle{}))
	other := encodeTo(t, "png", testPicture(32, 32, image.Rect(0, 0, 1, 1)))
	maskA := encodeTo(t, "png", maskPicture(32, 32, image.Rect(0, 0, 8, 8)))
	maskB := encodeTo(t, "png", maskPicture(32, 32, image.Rect(0, 0, 9, 8)))
	edit := func(image, mask []byte) []formPart {
		parts := []formPart{filePart("image", image), textPart("prompt", "p"), textPart("model", "sd-tiny"), textPart("seed", "7")}
		if mask != nil {
			parts = append(parts, filePart("mask", mask))
		}
		return parts
	}
	steps := []struct {
		name  string
		path  string
		parts []formPart
		want  string
	}{
		{"first edit", "/v1/images/edits", edit(img, maskA), "MISS"},
		{"same upload", "/v1/images/edits", edit(img, maskA), "HIT"},
		{"another mask", "/v1/images/edits", edit(img, maskB), "MISS"},
		{"no mask", "/v1/images/edits", edit(img, nil), "MISS"},
		{"another image", "/v1/images/edits", edit(other, nil), "MISS"},
		{"a variation of the same image", "/v1/images/variations", []formPart{filePart("image", img),
			textPart("prompt", "p"), textPart("model", "sd-tiny"), textPart("seed", "7")}, "MISS"},
		{"that variation again", "/v1/images/variations", []formPart{filePart("image", img),
			textPart("prompt", "p"), textPart("model", "sd-tiny"), textPart("seed", "7")}, "HIT"},
	}
	for _, st := range steps {
		r := postForm(t, ts, st.path, st.parts...)
		if r.status != http.StatusOK || r.header.Get("X-Cache") != st.want {
			t.Errorf("%s: status %d X-Cache %q, want %s", st.name, r.status, r.header.Get("X-Cache"), st.want)
		}
	}
}

// Edits go through the key gate like generations: admitted, metered.
func TestEditsAreMetered(t *testing.T) {
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, err := auth.New(store, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "k", Limits: auth.Limits{ImageQuota: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, editFake(), func(o *Options) { o.Gate = gate })
	body, ct := multipartBody(t, filePart("image", encodeTo(t, "png", testPicture(32, 32, image.Rectangle{}))),
		textPart("prompt", "p"), textPart("model", "dall-e-2"), textPart("n", "2"), textPart("size", "256x256"))
	anonymous := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", ct, string(body))
	first := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", ct, string(body), "Authorization", "Bearer "+key)
	second := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/variations", ct,
		strings.Replace(string(body), `name="prompt"`, `name="user"`, 1), "Authorization", "Bearer "+key)
	if anonymous.status != 401 || first.status != 200 || second.status != 429 {
		t.Fatalf("statuses %d %d %d, want 401 200 429 (quota of 2 images spent by the edit): %s", anonymous.status, first.status, second.status, second.body)
	}
}

func TestFromEditRequest(t *testing.T) {
	sd15 := models.Info{ID: "sd15", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 20, DefaultGuidance: 7.5, CanEncode: true}
	pic := func(w, h int) image.Image { return testPicture(w, h, image.Rectangle{}) }
	mask := func(w, h int) *image.Gray { return compat.RepaintRegion(testPicture(w, h, image.Rect(0, 0, w/2, h/2))) }
	tests := []struct {
		name         string
		family       compat.Family
		req          compat.ImageEditRequest
		in           EditInput
		wantOut      image.Point
		wantGen      image.Point
		wantStrength float64
		wantKeep     bool
	}{
		{"dall-e-2 default size with mask", compat.FamilyDallE2, compat.ImageEditRequest{Prompt: "p"},
			EditInput{Image: pic(1024, 1024), Mask: mask(1024, 1024)}, image.Pt(1024, 1024), image.Pt(512, 512), 1, true},
		{"dall-e-2 256 without mask", compat.FamilyDallE2, compat.ImageEditRequest{Prompt: "p", Size: "256x256"},
			EditInput{Image: pic(256, 256)}, image.Pt(256, 256), image.Pt(512, 512), spec.DefaultStrength, false},
		{"gpt-image-1 auto on a 4:3 input is 1536x1024", compat.FamilyGPTImage, compat.ImageEditRequest{Prompt: "p"},
			EditInput{Image: pic(1000, 750)}, image.Pt(1536, 1024), image.Pt(624, 416), spec.DefaultStrength, false},
		{"gpt-image-1.5 auto on a near-square input is 1024x1024", compat.FamilyGPTImage15, compat.ImageEditRequest{Prompt: "p"},
			EditInput{Image: pic(1000, 900), Mask: mask(1000, 900)}, image.Pt(1024, 1024), image.Pt(512, 512), 1, true},
		{"gpt-image-1 wide", compat.FamilyGPTImage, compat.ImageEditRequest{Prompt: "p", Size: "1536x1024", Strength: ptr(0.4)},
			EditInput{Image: pic(300, 200), Mask: mask(300, 200)}, image.Pt(1536, 1024), image.Pt(624, 416), 0.4, true},
		{"local exact size", compat.FamilyLocal, compat.ImageEditRequest{Prompt: "p", Size: "768x512"},
			EditInput{Image: pic(300, 200)}, image.Pt(768, 512), image.Pt(768, 512), spec.DefaultStrength, false},
		{"local auto", compat.FamilyLocal, compat.ImageEditRequest{Prompt: "p"},
			EditInput{Image: pic(64, 64), Mask: mask(64, 64)}, image.Pt(64, 64), image.Pt(512, 512), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := FromEditRequest(tt.req, testTarget(t, string(tt.family), tt.family, sd15), tt.in, 99)
			if err != nil {
				t.Fatal(err)
			}
			if got := image.Pt(plan.Width, plan.Height); got != tt.wantOut {
				t.Errorf("delivered %v, want %v", got, tt.wantOut)
			}
			if got := image.Pt(plan.SD.Width, plan.SD.Height); got != tt.wantGen {
				t.Errorf("generated %v, want %v", got, tt.wantGen)
			}
			if plan.SD.InitImage.Bounds() != (image.Rectangle{Max: tt.wantGen}) {
				t.Errorf("init image %v, want %v", plan.SD.InitImage.Bounds(), tt.wantGen)
			}
			if plan.SD.Strength != tt.wantStrength || !plan.SD.HasStrength {
				t.Errorf("strength %v, want %v", plan.SD.Strength, tt.wantStrength)
			}
			if (plan.Keep != nil) != tt.wantKeep || (plan.SD.Mask != nil) != tt.wantKeep {
				t.Fatalf("keep %v mask %v, want both %v", plan.Keep != nil, plan.SD.Mask != nil, tt.wantKeep)
			}
			if tt.wantKeep {
				checkBinaryMask(t, plan.SD.Mask, tt.wantGen)
				checkBinaryMask(t, plan.Keep.Mask, tt.wantOut)
				if plan.Keep.Image.Bounds().Size() != tt.wantOut {
					t.Errorf("kept image %v", plan.Keep.Image.Bounds())
				}
			}
			if want := imageTokens(tt.wantGen.X, tt.wantGen.Y, plan.Quality); plan.ImageTokens != want {
				t.Errorf("image tokens %d, want %d", plan.ImageTokens, want)
			}
		})
	}
	plan, err := FromVariationRequest(compat.ImageVariationRequest{}, testTarget(t, "dall-e-2", compat.FamilyDallE2, sd15), pic(64, 64), 5)
	if err != nil {
		t.Fatal(err)
	}
	if plan.SD.Strength != VariationStrength || plan.SD.Prompt != "" || plan.Width != 1024 || plan.SD.Seed != 5 || plan.SD.Mask != nil {
		t.Errorf("variation plan %+v", plan.SD)
	}
}

// Edits and variations, successes and errors, match the OpenAPI document;
// the successful multipart requests validate against it too.
func TestEditsMatchOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, editFake())
	img := encodeTo(t, "png", testPicture(32, 32, image.Rect(0, 0, 8, 8)))
	mask := encodeTo(t, "png", maskPicture(32, 32, image.Rect(4, 4, 12, 12)))
	tests := []struct {
		name         string
		path         string
		parts        []formPart
		validRequest bool
		wantStatus   int
	}{
		{"edit dall-e-2 url", "/v1/images/edits", []formPart{filePart("image", img), filePart("mask", mask),
			textPart("prompt", "p"), textPart("model", "dall-e-2"), textPart("n", "2"), textPart("size", "256x256")}, true, 200},
		{"edit gpt-image-1 image[]", "/v1/images/edits", []formPart{filePart("image[]", img), textPart("prompt", "p"),
			textPart("model", "gpt-image-1"), textPart("output_format", "jpeg"), textPart("output_compression", "50"),
			textPart("strength", "0.5"), textPart("seed", "3")}, true, 200},
		{"variation", "/v1/images/variations", []formPart{filePart("image", img), textPart("size", "512x512"),
			textPart("response_format", "b64_json")}, true, 200},
		{"variation local with extensions", "/v1/images/variations", []formPart{filePart("image", img),
			textPart("model", "sd-tiny"), textPart("prompt", "p"), textPart("strength", "0.9"), textPart("steps", "3")}, true, 200},
		{"edit 400", "/v1/images/edits", []formPart{filePart("image", img)}, false, 400},
		{"edit 404 model", "/v1/images/edits", []formPart{filePart("image", img), textPart("prompt", "p"), textPart("model", "nope")}, true, 404},
		{"variation 400", "/v1/images/variations", []formPart{textPart("n", "1")}, false, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.parts...)
			got := do(t, ts.Client(), http.MethodPost, ts.URL+tt.path, ct, string(body))
			if got.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.300s", got.status, tt.wantStatus, got.body)
			}
			req, err := http.NewRequest(http.MethodPost, "http://sdgate"+tt.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no documented route: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if tt.validRequest {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("request does not match the document: %v", err)
				}
			}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: got.status, Header: got.header,
				Body: io.NopCloser(bytes.NewReader(got.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true},
			})
			if err != nil {
				t.Errorf("response does not match the document: %v", err)
			}
		})
	}
}

// FuzzEditsHandler: whatever the multipart body, edits and variations
// answer 200 or a client error in the envelope, never a 5xx.
func FuzzEditsHandler(f *testing.F) {
	img := encodeTo(f, "png", testPicture(16, 16, image.Rect(0, 0, 4, 4)))
	mask := encodeTo(f, "png", maskPicture(16, 16, image.Rect(2, 2, 6, 6)))
	seeds := [][]formPart{
		{filePart("image", img), textPart("prompt", "p"), textPart("n", "0"), textPart("size", "")},
		{filePart("image", img), filePart("mask", mask), textPart("prompt", "p"), textPart("model", "sd-tiny"), textPart("seed", "1")},
		{filePart("image[]", img), textPart("prompt", "p"), textPart("model", "gpt-image-1"), textPart("strength", "0.5")},
		{filePart("image", encodeTo(f, "jpeg", testPicture(16, 8, image.Rectangle{}))), textPart("prompt", "p"), textPart("model", "sd-tiny")},
		{filePart("image", []byte("\x89PNG\r\n\x1a\n")), textPart("prompt", "p")},
	}
	var boundary string
	for _, parts := range seeds {
		body, ct := multipartBody(f, parts...)
		boundary = ct
		f.Add(body, true)
		f.Add(body, false)
	}
	s, err := New(editFake(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, edit bool) {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(body[min(len(body), bytes.Index(body, []byte("\r\n\r\n"))+4):])); err == nil && cfg.Width*cfg.Height > 1<<16 {
			t.Skip("large pictures only cost time")
		}
		path := "/v1/images/variations"
		if edit {
			path = "/v1/images/edits"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", boundary)
		checkFuzzAnswer(t, h, req, body)
	})
}
