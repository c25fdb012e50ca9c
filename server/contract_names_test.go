package server

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/compat"
)

// defaultLimitsServer serves editFake behind a Gate with the server-wide default
// limits and returns a key created with no limits of its own, as
// `sdgate keys create --name NAME` makes one.
func defaultLimitsServer(t *testing.T) (ts *httptest.Server, key string) {
	t.Helper()
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, err := auth.New(store, auth.Options{DefaultLimits: auth.Limits{
		RequestsPerMinute: auth.DefaultRequestsPerMinute, ImagesPerMinute: auth.DefaultImagesPerMinute}})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err = gate.CreateKey(context.Background(), auth.KeySpec{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, editFake(), func(o *Options) { o.Gate = gate }), key
}

// The current OpenAI image model names through go-openai: each generates,
// gpt-image-2 at a free size, an edit without a model is gpt-image-1.5's,
// and a 200 to a key created with no limits carries the rate-limit headers.
func TestContractGoOpenAICurrentModels(t *testing.T) {
	ts, key := defaultLimitsServer(t)
	cfg := openai.DefaultConfig(key)
	cfg.BaseURL, cfg.HTTPClient = ts.URL+"/v1", ts.Client()
	client := openai.NewClientWithConfig(cfg)
	ctx := context.Background()

	for _, tt := range []struct {
		model, size string
		w, h        int
	}{
		{"gpt-image-1-mini", "", 1024, 1024},
		{"gpt-image-1.5", "1536x1024", 1536, 1024},
		{"chatgpt-image-latest", "1024x1536", 1024, 1536},
		{"gpt-image-2", "2048x1152", 2048, 1152},
		{"gpt-image-2-2026-04-21", "1280x720", 1280, 720},
	} {
		t.Run(tt.model, func(t *testing.T) {
			resp, err := client.CreateImage(ctx, openai.ImageRequest{Model: tt.model, Prompt: "a lighthouse", Size: tt.size, Quality: "low"})
			if err != nil {
				t.Fatal(err)
			}
			img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
			if b := img.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
				t.Errorf("image %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.w, tt.h)
			}
			if resp.Usage.OutputTokens == 0 || resp.Usage.InputTokensDetails.TextTokens == 0 {
				t.Errorf("usage %+v", resp.Usage)
			}
			h := resp.GetRateLimitHeaders()
			if h.LimitRequests != auth.DefaultRequestsPerMinute || h.RemainingRequests >= h.LimitRequests || h.ResetRequests == "" {
				t.Errorf("rate-limit headers %+v, want the server defaults", h)
			}
		})
	}
	t.Run("gpt-image-2 size out of bounds", func(t *testing.T) {
		_, err := client.CreateImage(ctx, openai.ImageRequest{Model: "gpt-image-2", Prompt: "p", Size: "3840x1000"})
		checkAPIError(t, err, http.StatusBadRequest, "size", compat.CodeInvalidValue)
	})
	t.Run("a name OpenAI does not have", func(t *testing.T) {
		_, err := client.CreateImage(ctx, openai.ImageRequest{Model: "gpt-image-3", Prompt: "p"})
		checkAPIError(t, err, http.StatusNotFound, "model", "model_not_found")
	})
	t.Run("edit without a model is gpt-image-1.5", func(t *testing.T) {
		resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Prompt: "a hat", Quality: "standard",
			Image: bytes.NewReader(encodeTo(t, "png", testPicture(48, 32, image.Rect(0, 0, 8, 8))))})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
		// b64_json (gpt-image-1.5 has no url), usage, 1536x1024 for a 3:2 input.
		if resp.Data[0].URL != "" || resp.Usage.InputTokensDetails.ImageTokens == 0 || img.Bounds().Size() != image.Pt(1536, 1024) {
			t.Errorf("url %q usage %+v size %v", resp.Data[0].URL, resp.Usage, img.Bounds().Size())
		}
	})
	// go-openai has no JSON edit body; the same server takes it over plain HTTP.
	t.Run("JSON edit", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"model": "gpt-image-2", "prompt": "a hat", "size": "1024x1024",
			"images": []map[string]string{{"image_url": pngDataURL(t, testPicture(32, 32, image.Rectangle{}))}},
			"mask":   map[string]string{"image_url": pngDataURL(t, maskPicture(32, 32, image.Rect(8, 8, 16, 16)))}})
		r := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", "application/json", string(body), "Authorization", "Bearer "+key)
		if r.status != http.StatusOK || r.header.Get(auth.HeaderLimitImages) == "" {
			t.Fatalf("status %d, headers %v: %.300s", r.status, r.header, r.body)
		}
		var resp openai.ImageResponse
		if err := json.Unmarshal(r.body, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 1 || resp.Data[0].B64JSON == "" || resp.Usage.InputTokensDetails.ImageTokens == 0 {
			t.Errorf("answer %+v", resp)
		}
	})
}

// TestContractNodeSDKCurrentModels runs testdata/openai_node_models.cjs:
// the same names and the JSON edit through the official Node SDK.
func TestContractNodeSDKCurrentModels(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the Node SDK contract in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official Node SDK contract")
	}
	modules := nodeSDK(t)
	ts, key := defaultLimitsServer(t)
	dir := t.TempDir()
	for name, img := range map[string]image.Image{
		"image.png": testPicture(32, 32, image.Rect(0, 0, 8, 8)), "mask.png": maskPicture(32, 32, image.Rect(16, 16, 24, 24)),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), encodeTo(t, "png", img), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_models.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SDGATE_BASE_URL="+ts.URL+"/v1", "SDGATE_API_KEY="+key, "SDGATE_EDIT_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("node contract:\n%s", out)
	if err != nil {
		t.Fatalf("node contract failed: %v", err)
	}
}
