package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/gen2brain/webp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/sdgate/sdgate/models"
)

// Contract tests: a real listening server driven by the go-openai client.

func newClient(ts *httptest.Server, url string) *openai.Client {
	cfg := openai.DefaultConfig("sk-unused")
	cfg.BaseURL = url + "/v1"
	cfg.HTTPClient = ts.Client()
	return openai.NewClientWithConfig(cfg)
}

// decodeImage decodes PNG, JPEG or WebP bytes and returns the format name.
func decodeImage(t *testing.T, data []byte) (image.Image, string) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode image (%d bytes): %v", len(data), err)
	}
	return img, format
}

func fetch(t *testing.T, client *http.Client, url string) []byte {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, data)
	}
	return data
}

// imageBytes returns the encoded image of one data item, fetching URLs.
func imageBytes(t *testing.T, client *http.Client, d openai.ImageResponseDataInner) []byte {
	t.Helper()
	if d.URL != "" {
		if d.B64JSON != "" {
			t.Error("item has both url and b64_json")
		}
		return fetch(t, client, d.URL)
	}
	data, err := base64.StdEncoding.DecodeString(d.B64JSON)
	if err != nil {
		t.Fatalf("b64_json: %v", err)
	}
	return data
}

var imageURLPattern = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/v1/files/images/[0-9a-f]{32}\.(png|jpeg|webp)$`)

// TestContractGoOpenAI runs the go-openai contract on the fake pipeline;
// runGoOpenAIContract takes any Backend, so the real one can run it too.
func TestContractGoOpenAI(t *testing.T) {
	runGoOpenAIContract(t, newFakeGenerator())
}

// runGoOpenAIContract checks generations, image sizes and formats, n=2,
// each alias and the validation errors through go-openai. Aliases map to
// the first local model by id; local-model cases use that model too.
func runGoOpenAIContract(t *testing.T, gen Backend) {
	infos := slices.Clone(gen.Models())
	if len(infos) == 0 {
		t.Fatal("the generator serves no model")
	}
	slices.SortFunc(infos, func(a, b models.Info) int { return strings.Compare(a.ID, b.ID) })
	local := infos[0]
	nw, nh := local.NativeWidth, local.NativeHeight
	ts := startServer(t, gen)
	t.Run("generations", func(t *testing.T) { contractGenerations(t, ts, local.ID, nw, nh) })
	t.Run("two images differ", func(t *testing.T) { contractTwoImagesDiffer(t, ts) })
	t.Run("errors", func(t *testing.T) { contractErrors(t, ts, local.ID) })
}

func contractGenerations(t *testing.T, ts *httptest.Server, localID string, nw, nh int) {
	client := newClient(ts, ts.URL)
	halfH := max(8, nh/16*8)
	tests := []struct {
		name       string
		req        openai.ImageRequest
		wantW      int
		wantH      int
		wantFormat string
		wantN      int
		wantURL    bool
		wantUsage  bool
		wantRevise bool
	}{
		{"default model is dall-e-2 with url", openai.ImageRequest{Prompt: "a red fox", Size: "256x256"},
			256, 256, "png", 1, true, false, false},
		{"dall-e-2 b64 default size", openai.ImageRequest{Prompt: "a red fox", Model: "dall-e-2", ResponseFormat: "b64_json"},
			1024, 1024, "png", 1, false, false, false},
		{"dall-e-2 n=3 url", openai.ImageRequest{Prompt: "fox", Model: "dall-e-2", N: 3, Size: "512x512", ResponseFormat: "url"},
			512, 512, "png", 3, true, false, false},
		{"dall-e-3 wide hd natural", openai.ImageRequest{Prompt: "a fox", Model: "dall-e-3", Size: "1792x1024",
			Quality: "hd", Style: "natural", ResponseFormat: "b64_json"}, 1792, 1024, "png", 1, false, false, true},
		{"dall-e-3 tall url", openai.ImageRequest{Prompt: "a fox", Model: "dall-e-3", Size: "1024x1792"},
			1024, 1792, "png", 1, true, false, true},
		{"gpt-image-1 auto is 1024x1024, not the native size", openai.ImageRequest{Prompt: "a fox", Model: "gpt-image-1"},
			1024, 1024, "png", 1, false, true, false},
		{"gpt-image-1 jpeg", openai.ImageRequest{Prompt: "a fox", Model: "gpt-image-1", Size: "1536x1024",
			Quality: "low", OutputFormat: "jpeg", OutputCompression: 60, Background: "opaque", Moderation: "low", User: "u1"},
			1536, 1024, "jpeg", 1, false, true, false},
		{"gpt-image-1 webp n=2", openai.ImageRequest{Prompt: "a fox", Model: "gpt-image-1", N: 2, Size: "1024x1536",
			Quality: "high", OutputFormat: "webp", OutputCompression: 80}, 1024, 1536, "webp", 2, false, true, false},
		{"missing model with output_format is gpt-image-1", openai.ImageRequest{Prompt: "a fox", OutputFormat: "png"},
			1024, 1024, "png", 1, false, true, false},
		{"local model exact size", openai.ImageRequest{Prompt: "a fox", Model: localID,
			Size: fmt.Sprintf("%dx%d", nw, halfH), ResponseFormat: "url"}, nw, halfH, "png", 1, true, true, false},
		{"local model auto is native", openai.ImageRequest{Prompt: "a fox", Model: localID},
			nw, nh, "png", 1, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.CreateImage(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("CreateImage: %v", err)
			}
			if resp.Created == 0 {
				t.Error("created is 0")
			}
			if len(resp.Data) != tt.wantN {
				t.Fatalf("%d images, want %d", len(resp.Data), tt.wantN)
			}
			for _, d := range resp.Data {
				if tt.wantURL != (d.URL != "") {
					t.Errorf("url %q, want url=%v", d.URL, tt.wantURL)
				}
				if d.URL != "" && !imageURLPattern.MatchString(d.URL) {
					t.Errorf("url %q does not look like an unguessable image path", d.URL)
				}
				img, format := decodeImage(t, imageBytes(t, ts.Client(), d))
				if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
					t.Errorf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.wantW, tt.wantH)
				}
				if format != tt.wantFormat {
					t.Errorf("format %s, want %s", format, tt.wantFormat)
				}
				if tt.wantRevise != (d.RevisedPrompt != "") {
					t.Errorf("revised_prompt %q, want present=%v", d.RevisedPrompt, tt.wantRevise)
				}
			}
			u := resp.Usage
			if tt.wantUsage {
				if u.InputTokens <= 0 || u.OutputTokens <= 0 || u.TotalTokens != u.InputTokens+u.OutputTokens ||
					u.InputTokensDetails.TextTokens != u.InputTokens {
					t.Errorf("usage %+v is not well formed", u)
				}
			} else if u != (openai.ImageResponseUsage{}) {
				t.Errorf("usage %+v on a DALL-E family answer", u)
			}
		})
	}
}

func contractTwoImagesDiffer(t *testing.T, ts *httptest.Server) {
	client := newClient(ts, ts.URL)
	resp, err := client.CreateImage(context.Background(), openai.ImageRequest{
		Prompt: "two foxes", Model: "dall-e-2", N: 2, Size: "256x256", ResponseFormat: "b64_json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 {
		t.Fatalf("%d images, want 2", len(resp.Data))
	}
	a, b := imageBytes(t, ts.Client(), resp.Data[0]), imageBytes(t, ts.Client(), resp.Data[1])
	if bytes.Equal(a, b) {
		t.Error("n=2 gave two identical images")
	}
}

func contractErrors(t *testing.T, ts *httptest.Server, localID string) {
	client := newClient(ts, ts.URL)
	tests := []struct {
		name       string
		req        openai.ImageRequest
		wantStatus int
		wantType   string
		wantParam  string
		wantCode   string
	}{
		{"missing prompt", openai.ImageRequest{Model: "dall-e-2"}, 400, "invalid_request_error", "prompt", "missing_required_parameter"},
		{"unknown model", openai.ImageRequest{Prompt: "p", Model: "dall-e-9"}, 404, "invalid_request_error", "model", "model_not_found"},
		{"dall-e-2 size", openai.ImageRequest{Prompt: "p", Model: "dall-e-2", Size: "1792x1024"}, 400, "invalid_request_error", "size", "invalid_value"},
		{"dall-e-3 n", openai.ImageRequest{Prompt: "p", Model: "dall-e-3", N: 2}, 400, "invalid_request_error", "n", "invalid_value"},
		{"dall-e-2 n", openai.ImageRequest{Prompt: "p", Model: "dall-e-2", N: 11}, 400, "invalid_request_error", "n", "integer_above_max_value"},
		{"dall-e-3 quality", openai.ImageRequest{Prompt: "p", Model: "dall-e-3", Quality: "high"}, 400, "invalid_request_error", "quality", "invalid_value"},
		{"dall-e-2 style", openai.ImageRequest{Prompt: "p", Model: "dall-e-2", Style: "vivid"}, 400, "invalid_request_error", "style", "unsupported_parameter"},
		{"gpt-image-1 url", openai.ImageRequest{Prompt: "p", Model: "gpt-image-1", ResponseFormat: "url"}, 400, "invalid_request_error", "response_format", "invalid_value"},
		{"gpt-image-1 transparent", openai.ImageRequest{Prompt: "p", Model: "gpt-image-1", Background: "transparent"}, 400, "invalid_request_error", "background", "invalid_value"},
		{"png compression", openai.ImageRequest{Prompt: "p", Model: "gpt-image-1", OutputCompression: 50}, 400, "invalid_request_error", "output_compression", "invalid_value"},
		{"dall-e-3 output_format", openai.ImageRequest{Prompt: "p", Model: "dall-e-3", OutputFormat: "png"}, 400, "invalid_request_error", "output_format", "unsupported_parameter"},
		{"local size not multiple of 8", openai.ImageRequest{Prompt: "p", Model: localID, Size: "100x100"}, 400, "invalid_request_error", "size", "invalid_value"},
		{"local size beyond the model", openai.ImageRequest{Prompt: "p", Model: localID, Size: "4096x4096"}, 400, "invalid_request_error", "size", "invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.CreateImage(context.Background(), tt.req)
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("got %v, want *openai.APIError", err)
			}
			if apiErr.HTTPStatusCode != tt.wantStatus || apiErr.Type != tt.wantType {
				t.Errorf("status %d type %q, want %d %q", apiErr.HTTPStatusCode, apiErr.Type, tt.wantStatus, tt.wantType)
			}
			if apiErr.Param == nil || *apiErr.Param != tt.wantParam {
				t.Errorf("param %v, want %q", apiErr.Param, tt.wantParam)
			}
			if apiErr.Code != tt.wantCode {
				t.Errorf("code %v, want %q", apiErr.Code, tt.wantCode)
			}
			if apiErr.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestContractModels(t *testing.T) {
	gen := newFakeGenerator()
	gen.names = models.IdentityConfig{Aliases: map[string]string{"dall-e-3": "sd-turbo"}, Default: "sd-tiny"}
	ts := startServer(t, gen)
	client := newClient(ts, ts.URL)
	list, err := client.ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Models {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy != "sdgate" || m.CreatedAt == 0 {
			t.Errorf("model %+v is not well formed", m)
		}
	}
	want := []string{"sd-tiny", "sd-turbo", "chatgpt-image-latest", "dall-e-2", "dall-e-3",
		"gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "gpt-image-2-2026-04-21"}
	if len(ids) != len(want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("ids %v, want %v", ids, want)
		}
	}
	m, err := client.GetModel(context.Background(), "dall-e-3")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "dall-e-3" || m.CreatedAt != 1700000100 {
		t.Errorf("dall-e-3 = %+v, want sd-turbo's creation time", m)
	}
	_, err = client.GetModel(context.Background(), "nope")
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("GetModel(nope) = %v, want 404 model_not_found", err)
	}
}
