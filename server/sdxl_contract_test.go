package server

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd/spec"
)

// The go-openai contract against SDXL: dall-e-3 and gpt-image-1 point at
// an sdxl-tiny folder (native 128x128, so its buckets are SDXL's at 1/8),
// dall-e-2 at the tiny SD 1.5 one. Each OpenAI size must be generated at
// the nearest bucket and delivered at exactly the size asked.

// sizeRecorder is the registry, noting the size each generation ran at.
type sizeRecorder struct {
	*models.Registry
	mu    sync.Mutex
	sizes []spec.Size
}

func (r *sizeRecorder) Generate(ctx context.Context, id string, req spec.Request) (spec.Result, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, spec.Size{Width: req.Width, Height: req.Height})
	r.mu.Unlock()
	return r.Registry.Generate(ctx, id, req)
}

func (r *sizeRecorder) last() spec.Size {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sizes) == 0 {
		return spec.Size{}
	}
	return r.sizes[len(r.sizes)-1]
}

func sdxlGenerator(t *testing.T) *sizeRecorder {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the real pipeline in -short mode")
	}
	open := realOpener(t)
	dir := t.TempDir()
	for id, opts := range map[string]synth.Options{"tiny": {Preset: "tiny"}, "xl": {Preset: "sdxl-tiny"}} {
		if _, err := synth.Write(context.Background(), filepath.Join(dir, id), opts, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := models.NewRegistry(models.RegistryOptions{Open: open, Dir: dir, QueueSize: 8, KeepAlive: -1, MaxResident: 2,
		Aliases: map[string]string{"dall-e-3": "xl", "gpt-image-1": "xl", "dall-e-2": "tiny"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	return &sizeRecorder{Registry: reg}
}

func TestContractGoOpenAISDXL(t *testing.T) {
	gen := sdxlGenerator(t)
	ts := startServer(t, gen)
	client := newClient(ts, ts.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		model, size string
		w, h        int
		gen         spec.Size
	}{
		{"dall-e-3", "1024x1024", 1024, 1024, spec.Size{Width: 128, Height: 128}},
		{"dall-e-3", "1792x1024", 1792, 1024, spec.Size{Width: 168, Height: 96}}, // SDXL's 1344x768 at 1/8
		{"dall-e-3", "1024x1792", 1024, 1792, spec.Size{Width: 96, Height: 168}},
		{"gpt-image-1", "1536x1024", 1536, 1024, spec.Size{Width: 152, Height: 104}}, // 1216x832
		{"dall-e-2", "512x512", 512, 512, spec.Size{Width: 64, Height: 64}},
	} {
		t.Run(tc.model+" "+tc.size, func(t *testing.T) {
			req := openai.ImageRequest{Prompt: "a lighthouse at dusk", Model: tc.model, Size: tc.size, ResponseFormat: "b64_json"}
			if tc.model == "gpt-image-1" {
				req.ResponseFormat, req.Quality = "", "low"
			}
			resp, err := client.CreateImage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 1 {
				t.Fatalf("%d images", len(resp.Data))
			}
			img, format := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h || format != "png" {
				t.Errorf("got %s %dx%d, want png %dx%d", format, b.Dx(), b.Dy(), tc.w, tc.h)
			}
			if got := gen.last(); got != tc.gen {
				t.Errorf("generated at %v, want the bucket %v", got, tc.gen)
			}
		})
	}

	t.Run("models list the family and native size", func(t *testing.T) {
		var list struct {
			Data []struct {
				ID         string `json:"id"`
				Family     string `json:"family"`
				NativeSize string `json:"native_size"`
			} `json:"data"`
		}
		if err := json.Unmarshal(fetch(t, ts.Client(), ts.URL+"/v1/models"), &list); err != nil {
			t.Fatal(err)
		}
		want := map[string][2]string{"xl": {"sdxl", "128x128"}, "dall-e-3": {"sdxl", "128x128"}, "tiny": {"sd15", "64x64"}, "dall-e-2": {"sd15", "64x64"}}
		seen := 0
		for _, m := range list.Data {
			if w, ok := want[m.ID]; ok {
				seen++
				if m.Family != w[0] || m.NativeSize != w[1] {
					t.Errorf("%s: family %q native %q, want %v", m.ID, m.Family, m.NativeSize, w)
				}
			}
		}
		if seen != len(want) {
			t.Errorf("saw %d of %d models in %+v", seen, len(want), list.Data)
		}
	})

	t.Run("edit with a mask keeps the rest exactly", func(t *testing.T) {
		hole := image.Rect(32, 16, 96, 80)
		orig := testPicture(128, 128, image.Rectangle{})
		// The folder's own id: its "auto" size is the input's (gpt-image-1
		// would answer upstream's 1024x1024, resized from the bucket).
		resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: "xl", Prompt: "a red hat",
			Image: bytes.NewReader(encodeTo(t, "png", orig)), Mask: bytes.NewReader(encodeTo(t, "png", maskPicture(128, 128, hole))), Quality: "low"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 1 {
			t.Fatalf("answer %+v", resp)
		}
		img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
		checkEdited(t, img, orig, hole)
		if got := gen.last(); got != (spec.Size{Width: 128, Height: 128}) {
			t.Errorf("edit generated at %v, want 128x128", got)
		}
	})
}

// TestContractNodeSDKSDXL runs testdata/openai_node_sdxl.cjs against the
// same SDXL set-up, then checks the buckets the three images were made at.
func TestContractNodeSDKSDXL(t *testing.T) {
	gen := sdxlGenerator(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official Node SDK contract")
	}
	modules := nodeSDK(t)
	ts := startServer(t, gen)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_sdxl.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SDGATE_BASE_URL="+ts.URL+"/v1")
	out, err := cmd.CombinedOutput()
	t.Logf("node sdxl contract:\n%s", out)
	if err != nil {
		t.Fatalf("node sdxl contract failed: %v", err)
	}
	want := []spec.Size{{Width: 128, Height: 128}, {Width: 168, Height: 96}, {Width: 152, Height: 104}}
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if !slices.Equal(gen.sizes, want) {
		t.Errorf("generated at %v, want %v", gen.sizes, want)
	}
}
