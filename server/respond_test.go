package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
)

// The b64_json writer gives byte for byte what marshalling the response
// with the images' base64 strings gives, prompts full of JSON specials and
// a copy of the placeholder's prefix included.
func TestRespondJSONMatchesEncodingJSON(t *testing.T) {
	s, err := New(newFakeGenerator(), Options{Now: func() time.Time { return time.Unix(1800000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	images := [][]byte{{0, 1, 2, 250, 251, 252, 253}, {9}, []byte("a third image, longer than the others")}
	res := spec.Result{Prompt: `"quoted" <b>&</b> ` + b64Mark + "0 \u2028", Images: []spec.Image{{Seed: 1}, {Seed: 2}, {Seed: 3}}}
	req := compat.ImageGenerationRequest{Prompt: "a lighthouse at dusk", NegativePrompt: "fog"}
	urls := []imagePayload{{URL: "http://h/v1/files/images/a.png"}, {URL: "http://h/v1/files/images/b.png"}, {URL: "http://h/v1/files/images/c.png"}}
	for _, plan := range []GenerationPlan{
		{ResponseFormat: compat.ResponseFormatB64JSON, RevisedPrompt: true},
		{ResponseFormat: compat.ResponseFormatB64JSON, Usage: true, Width: 64, Height: 64, Quality: "high", OutputFormat: "png", Background: "opaque"},
		{ResponseFormat: compat.ResponseFormatURL, RevisedPrompt: true},
		{ResponseFormat: compat.ResponseFormatURL, Usage: true, Width: 64, Height: 64, Quality: "low", OutputFormat: "webp", Background: "opaque"},
	} {
		payloads := make([]imagePayload, len(images))
		cached := make([][]byte, len(images))
		for i, img := range images {
			payloads[i].B64 = base64.StdEncoding.EncodeToString(img)
			cached[i] = []byte(payloads[i].B64)
		}
		var stored []imagePayload // response_format=url: what produce stored
		if plan.ResponseFormat == compat.ResponseFormatURL {
			payloads, stored = urls, urls
		}
		tokens := 0
		if plan.Usage {
			tokens = s.textTokens(req, res)
		}
		want, _ := json.Marshal(ToImagesResponse(plan, res, payloads, s.opts.Now(), tokens))
		for _, b64 := range [][][]byte{nil, cached} {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest("POST", "/v1/images/generations", nil)
			if err := s.respondJSON(c, plan, produced{result: res, images: images, b64: b64, payloads: stored}, req); err != nil {
				t.Fatal(err)
			}
			if got := w.Body.String(); got != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			wantCL := fmt.Sprint(len(want))
			if plan.ResponseFormat == compat.ResponseFormatURL && len(want) < smallResponse {
				wantCL = "" // net/http's to write (TestSmallAnswersHaveContentLength)
			}
			if ct, cl := w.Header().Get("Content-Type"), w.Header().Get("Content-Length"); ct != "application/json; charset=utf-8" || cl != wantCL {
				t.Errorf("content type %q, length %s for %d bytes", ct, cl, len(want))
			}
		}
	}
}

// TestSmallAnswersHaveContentLength: a url answer small enough for
// writeJSON to leave its length to net/http still arrives with one, not
// chunked.
func TestSmallAnswersHaveContentLength(t *testing.T) {
	ts := startServer(t, newFakeGenerator())
	resp, err := ts.Client().Post(ts.URL+"/v1/images/generations", "application/json",
		strings.NewReader(`{"model":"sd-tiny","prompt":"a lighthouse","response_format":"url","seed":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) >= smallResponse {
		t.Fatalf("status %d, %d bytes: want a small 200", resp.StatusCode, len(body))
	}
	if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 {
		t.Errorf("Content-Length %d, transfer encoding %v for %d bytes", resp.ContentLength, resp.TransferEncoding, len(body))
	}
}
