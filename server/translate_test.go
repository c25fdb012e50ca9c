package server

import (
	"errors"
	"image"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

func ptr[T any](v T) *T { return &v }

func testTarget(t *testing.T, name string, f compat.Family, info models.Info) Target {
	t.Helper()
	r, ok := compat.RulesFor(f)
	if !ok {
		t.Fatalf("no rules for %s", f)
	}
	return Target{Name: name, ModelID: info.ID, Rules: r, Info: info}
}

func TestFromGenerationRequest(t *testing.T) {
	sd15 := models.Info{ID: "sd15", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 25, DefaultGuidance: 7.5}
	turbo := models.Info{ID: "turbo", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 4, DefaultGuidance: 0}
	sdxl := models.Info{ID: "sdxl", NativeWidth: 1024, NativeHeight: 1024, DefaultSteps: 30, DefaultGuidance: 5}
	tests := []struct {
		name   string
		req    compat.ImageGenerationRequest
		family compat.Family
		info   models.Info
		want   GenerationPlan
	}{
		{
			name: "dall-e-2 defaults", family: compat.FamilyDallE2, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p"},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 512, Height: 512, Steps: 25, Seed: 99, HasSeed: true, N: 1},
				Width: 1024, Height: 1024, ResponseFormat: "url", OutputFormat: "png", Compression: 100,
				Quality: "medium", Background: "opaque",
			},
		},
		{
			name: "dall-e-2 small size generates native and shrinks", family: compat.FamilyDallE2, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p", Size: "256x256", N: ptr(4), ResponseFormat: "b64_json"},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 512, Height: 512, Steps: 25, Seed: 99, HasSeed: true, N: 4},
				Width: 256, Height: 256, ResponseFormat: "b64_json", OutputFormat: "png", Compression: 100,
				Quality: "medium", Background: "opaque",
			},
		},
		{
			name: "dall-e-3 default vivid, wide, hd", family: compat.FamilyDallE3, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p", Size: "1792x1024", Quality: "hd"},
			want: GenerationPlan{
				SD: spec.Request{Prompt: "p", Width: 680, Height: 384, Steps: 50, Guidance: 9, HasGuidance: true,
					Seed: 99, HasSeed: true, N: 1},
				Width: 1792, Height: 1024, ResponseFormat: "url", OutputFormat: "png", Compression: 100,
				Quality: "high", Background: "opaque", RevisedPrompt: true,
			},
		},
		{
			name: "dall-e-3 natural on sdxl, tall", family: compat.FamilyDallE3, info: sdxl,
			req: compat.ImageGenerationRequest{Prompt: "p", Size: "1024x1792", Style: "natural"},
			want: GenerationPlan{
				SD: spec.Request{Prompt: "p", Width: 776, Height: 1352, Steps: 30, Guidance: 3.5, HasGuidance: true,
					Seed: 99, HasSeed: true, N: 1},
				Width: 1024, Height: 1792, ResponseFormat: "url", OutputFormat: "png", Compression: 100,
				Quality: "medium", Background: "opaque", RevisedPrompt: true,
			},
		},
		{
			name: "style leaves a guidance-free model alone", family: compat.FamilyDallE3, info: turbo,
			req: compat.ImageGenerationRequest{Prompt: "p", Style: "vivid"},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 512, Height: 512, Steps: 4, Seed: 99, HasSeed: true, N: 1},
				Width: 1024, Height: 1024, ResponseFormat: "url", OutputFormat: "png", Compression: 100,
				Quality: "medium", Background: "opaque", RevisedPrompt: true,
			},
		},
		{
			name: "gpt-image-1 auto is 1024x1024 generated at the native size", family: compat.FamilyGPTImage, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p", Quality: "low", OutputFormat: "jpeg", OutputCompression: ptr(40),
				Background: "auto", Moderation: "low"},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 512, Height: 512, Steps: 13, Seed: 99, HasSeed: true, N: 1},
				Width: 1024, Height: 1024, ResponseFormat: "b64_json", OutputFormat: "jpeg", Compression: 40,
				Quality: "low", Background: "opaque", Usage: true,
			},
		},
		{
			name: "gpt-image-1 landscape high", family: compat.FamilyGPTImage, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p", Size: "1536x1024", Quality: "high", Stream: ptr(true)},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 624, Height: 416, Steps: 50, Seed: 99, HasSeed: true, N: 1},
				Width: 1536, Height: 1024, ResponseFormat: "b64_json", OutputFormat: "png", Compression: 100,
				Quality: "high", Background: "opaque", Usage: true, Stream: true,
			},
		},
		{
			name: "local exact size, extensions override quality and style", family: compat.FamilyLocal, info: sd15,
			req: compat.ImageGenerationRequest{Prompt: "p", Size: "640x360", Quality: "low", Style: "vivid",
				NegativePrompt: "n", Seed: ptr(uint64(7)), Steps: ptr(9), GuidanceScale: ptr(0.0), Scheduler: "ddim",
				ResponseFormat: "url", OutputFormat: "webp"},
			want: GenerationPlan{
				SD: spec.Request{Prompt: "p", NegativePrompt: "n", Width: 640, Height: 360, Steps: 9, Guidance: 0,
					HasGuidance: true, Scheduler: "ddim", Seed: 7, HasSeed: true, N: 1},
				Width: 640, Height: 360, ResponseFormat: "url", OutputFormat: "webp", Compression: 100,
				Quality: "low", Background: "opaque", Usage: true, ExplicitSeed: true,
			},
		},
		{
			name: "model without a native size", family: compat.FamilyLocal, info: models.Info{ID: "x"},
			req: compat.ImageGenerationRequest{Prompt: "p", Quality: "high"},
			want: GenerationPlan{
				SD:    spec.Request{Prompt: "p", Width: 512, Height: 512, Seed: 99, HasSeed: true, N: 1},
				Width: 512, Height: 512, ResponseFormat: "b64_json", OutputFormat: "png", Compression: 100,
				Quality: "high", Background: "opaque", Usage: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := testTarget(t, string(tt.family), tt.family, tt.info)
			if err := compat.ValidateGeneration(tt.req, tg.Rules); err != nil {
				t.Fatalf("test request is invalid: %v", err)
			}
			got, err := FromGenerationRequest(tt.req, tg, 99)
			if err != nil {
				t.Fatalf("FromGenerationRequest: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromGenerationRequestRejects(t *testing.T) {
	info := models.Info{ID: "sd15", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 25, DefaultGuidance: 7.5}
	tests := []struct {
		name      string
		family    compat.Family
		req       compat.ImageGenerationRequest
		wantParam string
	}{
		{"transparent background", compat.FamilyGPTImage, compat.ImageGenerationRequest{Prompt: "p", Background: "transparent"}, "background"},
		{"transparent on a local model", compat.FamilyLocal, compat.ImageGenerationRequest{Prompt: "p", Background: "transparent"}, "background"},
		{"stream with url", compat.FamilyLocal, compat.ImageGenerationRequest{Prompt: "p", Stream: ptr(true), ResponseFormat: "url"}, "response_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromGenerationRequest(tt.req, testTarget(t, "m", tt.family, info), 1)
			var ce *compat.Error
			if !errors.As(err, &ce) || ce.Param != tt.wantParam {
				t.Errorf("got %v, want a compat error on %q", err, tt.wantParam)
			}
		})
	}
}

func TestGenerationSize(t *testing.T) {
	tests := []struct {
		w, h, nw, nh int
		gw, gh       int
	}{
		{1024, 1024, 512, 512, 512, 512},
		{256, 256, 512, 512, 512, 512},
		{1792, 1024, 512, 512, 680, 384},
		{1024, 1792, 512, 512, 384, 680},
		{1536, 1024, 512, 512, 624, 416},
		{1024, 1024, 1024, 1024, 1024, 1024},
		{1536, 1024, 1024, 1024, 1256, 840},
		{1024, 1024, 768, 768, 768, 768},
		{1024, 1024, 64, 64, 64, 64},
		{4096, 8, 64, 64, 1448, 8},
	}
	for _, tt := range tests {
		gw, gh := generationSize(tt.w, tt.h, tt.nw, tt.nh)
		if gw != tt.gw || gh != tt.gh {
			t.Errorf("generationSize(%dx%d on %dx%d) = %dx%d, want %dx%d", tt.w, tt.h, tt.nw, tt.nh, gw, gh, tt.gw, tt.gh)
		}
		if gw%8 != 0 || gh%8 != 0 {
			t.Errorf("%dx%d is not a multiple of 8", gw, gh)
		}
	}
}

func TestQualityStepsAndStyleGuidance(t *testing.T) {
	steps := []struct {
		quality string
		def     int
		want    int
	}{
		{"low", 25, 13}, {"low", 1, 1}, {"medium", 25, 25}, {"auto", 25, 25}, {"standard", 25, 25},
		{"high", 25, 50}, {"hd", 100, 150}, {"high", 0, 0},
	}
	for _, tt := range steps {
		if got := qualitySteps(tt.quality, tt.def); got != tt.want {
			t.Errorf("qualitySteps(%q, %d) = %d, want %d", tt.quality, tt.def, got, tt.want)
		}
	}
	guidance := []struct {
		style  string
		def    float64
		want   float64
		wantOK bool
	}{
		{"vivid", 7.5, 9, true}, {"natural", 7.5, 5.25, true}, {"natural", 1.2, 1, true},
		{"", 7.5, 0, false}, {"vivid", 1, 0, false}, {"vivid", 0, 0, false},
	}
	for _, tt := range guidance {
		got, ok := styleGuidance(tt.style, tt.def)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("styleGuidance(%q, %v) = %v, %v, want %v, %v", tt.style, tt.def, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestImageTokensMatchUpstream(t *testing.T) {
	tests := []struct {
		w, h    int
		quality string
		want    int
	}{
		{1024, 1024, "low", 272}, {1024, 1024, "medium", 1056}, {1024, 1024, "high", 4160},
		{1024, 1536, "low", 408}, {1024, 1536, "medium", 1584}, {1024, 1536, "high", 6240},
		{1536, 1024, "high", 6240}, {64, 64, "medium", 6}, {1, 1, "low", 2},
	}
	for _, tt := range tests {
		if got := imageTokens(tt.w, tt.h, tt.quality); got != tt.want {
			t.Errorf("imageTokens(%dx%d, %s) = %d, want %d", tt.w, tt.h, tt.quality, got, tt.want)
		}
	}
}

func TestToImagesResponse(t *testing.T) {
	res := spec.Result{Prompt: "used prompt", Images: []spec.Image{
		{Image: image.NewRGBA(image.Rect(0, 0, 8, 8)), Seed: 5}, {Image: image.NewRGBA(image.Rect(0, 0, 8, 8)), Seed: 6}}}
	created := time.Unix(1700000000, 0)
	payloads := []imagePayload{{URL: "http://h/1.png"}, {URL: "http://h/2.png"}}
	tests := []struct {
		name string
		plan GenerationPlan
		want compat.ImagesResponse
	}{
		{
			name: "dall-e-2",
			plan: GenerationPlan{Width: 256, Height: 256},
			want: compat.ImagesResponse{Created: 1700000000, Data: []compat.ImageData{
				{URL: "http://h/1.png", Seed: 5}, {URL: "http://h/2.png", Seed: 6}}},
		},
		{
			name: "dall-e-3 revises",
			plan: GenerationPlan{Width: 1024, Height: 1024, RevisedPrompt: true},
			want: compat.ImagesResponse{Created: 1700000000, Data: []compat.ImageData{
				{URL: "http://h/1.png", Seed: 5, RevisedPrompt: "used prompt"},
				{URL: "http://h/2.png", Seed: 6, RevisedPrompt: "used prompt"}}},
		},
		{
			name: "gpt-image-1 usage",
			plan: GenerationPlan{Width: 1024, Height: 1024, Quality: "medium", Usage: true, OutputFormat: "png", Background: "opaque"},
			want: compat.ImagesResponse{Created: 1700000000, Data: []compat.ImageData{
				{URL: "http://h/1.png", Seed: 5}, {URL: "http://h/2.png", Seed: 6}},
				Background: "opaque", OutputFormat: "png", Quality: "medium", Size: "1024x1024",
				Usage: &compat.ImageUsage{InputTokens: 9, OutputTokens: 2112, TotalTokens: 2121,
					InputTokensDetails:  compat.InputTokensDetails{TextTokens: 9},
					OutputTokensDetails: &compat.OutputTokensDetails{ImageTokens: 2112}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToImagesResponse(tt.plan, res, payloads, created, 9)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEstimateCLIPTokens(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{
		{"", 2},
		{"a cat", 4},
		{"a photo of an astronaut, riding a horse!", 12},
		{"1024 px", 7},
		{"über-café", 5},
		{strings.Repeat("cat ", 200), 202},
		{strings.Repeat("cat ", 2000), maxPromptTokens},
	}
	for _, tt := range tests {
		if got := estimateCLIPTokens(tt.text); got != tt.want {
			t.Errorf("estimateCLIPTokens(%.30q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

// A model's sdgate.json quality_steps and style_guidance win over the
// default factors; unnamed qualities and styles keep the factors.
func TestModelQualityAndStyleOverrides(t *testing.T) {
	info := models.Info{ID: "m", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 20, DefaultGuidance: 7,
		QualitySteps: map[string]int{"hd": 33}, StyleGuidance: map[string]float64{"natural": 3.5}}
	cases := []struct {
		quality, style string
		steps          int
		guidance       float64
	}{
		{"hd", "natural", 33, 3.5},
		{"standard", "vivid", 20, 8.4},
	}
	for _, c := range cases {
		req := compat.ImageGenerationRequest{Prompt: "p", Quality: c.quality, Style: c.style}
		plan, err := FromGenerationRequest(req, testTarget(t, "dall-e-3", compat.FamilyDallE3, info), 1)
		if err != nil {
			t.Fatal(err)
		}
		if plan.SD.Steps != c.steps || plan.SD.Guidance != c.guidance {
			t.Errorf("%s/%s: steps %d guidance %g, want %d %g", c.quality, c.style, plan.SD.Steps, plan.SD.Guidance, c.steps, c.guidance)
		}
	}
}
