package server

import (
	"encoding/base64"
	"encoding/json"
	"image"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/compat"
)

func pngDataURL(t testing.TB, img image.Image) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(encodeTo(t, "png", img))
}

// The JSON body form of an edit: data URLs in, the default model
// gpt-image-1.5, the same pipeline request as multipart.
func TestJSONEdit(t *testing.T) {
	gen := editFake()
	// The JSON route is an upload route: held to UploadLimit, not BodyLimit.
	ts := startServer(t, gen, func(o *Options) { o.BodyLimit = 256 })
	hole := image.Rect(8, 8, 24, 16)
	body := `{"prompt":"a hat","images":[{"image_url":"` + pngDataURL(t, testPicture(32, 32, image.Rectangle{})) + `"}],` +
		`"mask":{"image_url":"` + pngDataURL(t, maskPicture(32, 32, hole)) + `"},"quality":"low","output_format":"jpeg"}`
	if len(body) <= 256 {
		t.Fatalf("body of %d bytes does not exceed BodyLimit", len(body))
	}
	r := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", "application/json", body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %.300s", r.status, r.body)
	}
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 1 || resp.Data[0].B64JSON == "" || resp.Usage == nil || resp.OutputFormat != "jpeg" || resp.Quality != "low" {
		t.Errorf("answer is not gpt-image-1.5's: %.300s", r.body)
	}
	req := gen.lastRequest()
	if req.InitImage == nil || req.Mask == nil || req.Prompt != "a hat" || !req.HasStrength || req.Strength != 1 {
		t.Errorf("pipeline request: init %v, mask %v, prompt %q, strength %v", boundsOf(req.InitImage), req.Mask != nil, req.Prompt, req.Strength)
	}
}

func TestJSONEditErrors(t *testing.T) {
	gen := editFake()
	ts := startServer(t, gen)
	img := `{"image_url":"` + pngDataURL(t, testPicture(32, 32, image.Rect(0, 0, 8, 8))) + `"}`
	tests := []struct {
		name, body, wantParam, wantCode, wantText string
	}{
		{"file id", `{"prompt":"p","images":[{"file_id":"file-123"}]}`, "images[0].file_id", "unsupported_parameter", "does not fetch"},
		{"remote URL", `{"prompt":"p","images":[{"image_url":"https://example.com/a.png"}]}`, "images[0].image_url", "unsupported_parameter", "does not fetch remote"},
		{"dall-e-2", `{"prompt":"p","model":"dall-e-2","images":[` + img + `]}`, "model", "invalid_value", "multipart"},
		{"dall-e-3", `{"prompt":"p","model":"dall-e-3","images":[` + img + `]}`, "model", "invalid_value", "does not support image edits"},
		{"two images", `{"prompt":"p","images":[` + img + `,` + img + `]}`, "images", "invalid_value", "one image per request"},
		{"not a picture", `{"prompt":"p","images":[{"image_url":"data:image/png;base64,R0lGODlh"}]}`, "images[0].image_url", "invalid_image_format", "PNG, JPEG and WebP"},
		{"mask of another size", `{"prompt":"p","images":[` + img + `],"mask":{"image_url":"` +
			pngDataURL(t, maskPicture(16, 16, image.Rect(0, 0, 4, 4))) + `"}}`, "mask", "invalid_image", "same size"},
		{"quality standard is multipart only", `{"prompt":"p","quality":"standard","images":[` + img + `]}`, "quality", "invalid_value", "Supported values"},
		{"unknown model", `{"prompt":"p","model":"gpt-image-9","images":[` + img + `]}`, "model", "model_not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", "application/json", tt.body)
			want := http.StatusBadRequest
			if tt.wantCode == "model_not_found" {
				want = http.StatusNotFound
			}
			if r.status != want {
				t.Fatalf("status %d, want %d: %.300s", r.status, want, r.body)
			}
			e := envelope(t, r)
			if deref(e.Param) != tt.wantParam || deref(e.Code) != tt.wantCode || !strings.Contains(e.Message, tt.wantText) {
				t.Errorf("param %s code %s (%s), want %s %s containing %q", deref(e.Param), deref(e.Code), e.Message, tt.wantParam, tt.wantCode, tt.wantText)
			}
		})
	}
	if n := gen.calls.Load(); n != 0 {
		t.Errorf("generator called %d times, want 0", n)
	}
}

// A multipart edit without "model" is gpt-image-1.5's, as upstream: b64_json
// with usage, and its "standard" quality accepted.
func TestEditDefaultModel(t *testing.T) {
	ts := startServer(t, editFake())
	r := postForm(t, ts, "/v1/images/edits", filePart("image", encodeTo(t, "png", testPicture(32, 32, image.Rect(0, 0, 8, 8)))),
		textPart("prompt", "p"), textPart("quality", "standard"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %.300s", r.status, r.body)
	}
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Data[0].B64JSON == "" || resp.Data[0].URL != "" || resp.Usage == nil || resp.Quality != "medium" {
		t.Errorf("not a gpt-image-1.5 answer: %.300s", r.body)
	}
}

// FuzzJSONEditHandler: whatever the JSON edit body, the handler answers 200
// or a client error in the envelope, never a 5xx.
func FuzzJSONEditHandler(f *testing.F) {
	img := pngDataURL(f, testPicture(16, 16, image.Rect(0, 0, 4, 4)))
	mask := pngDataURL(f, maskPicture(16, 16, image.Rect(2, 2, 6, 6)))
	for _, seed := range []string{
		`{"prompt":"p","images":[{"image_url":"` + img + `"}]}`,
		`{"prompt":"p","model":"sd-tiny","images":[{"image_url":"` + img + `"}],"mask":{"image_url":"` + mask + `"},"background":"transparent","seed":1}`,
		`{"prompt":"p","model":"gpt-image-2","size":"1280x720","images":[{"image_url":"` + img + `"}],"quality":"low"}`,
		`{"prompt":"p","images":[{"image_url":"data:image/png;base64,iVBORw0KGgo="}]}`,
		`{"prompt":"p","images":[{"file_id":"f"}]}`, `{"images":[]}`, `{"prompt":"p","mask":{"image_url":"` + mask + `"}}`,
	} {
		f.Add(seed)
	}
	s, err := New(editFake(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/images/edits", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		checkFuzzAnswer(t, h, req, body)
	})
}
