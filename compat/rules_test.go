package compat

import (
	"errors"
	"strings"
	"testing"
)

func mustRules(t *testing.T, f Family) Rules {
	t.Helper()
	r, ok := RulesFor(f)
	if !ok {
		t.Fatalf("no rules for %q", f)
	}
	return r
}

func TestValidateGenerationAccepts(t *testing.T) {
	tests := []struct {
		name   string
		family Family
		req    ImageGenerationRequest
	}{
		{"dall-e-2 minimal", FamilyDallE2, ImageGenerationRequest{Prompt: "p"}},
		{"dall-e-2 full", FamilyDallE2, ImageGenerationRequest{Prompt: strings.Repeat("a", 1000), N: ptr(10),
			Size: "256x256", Quality: "standard", ResponseFormat: "b64_json", User: "u"}},
		{"dall-e-3 full", FamilyDallE3, ImageGenerationRequest{Prompt: strings.Repeat("é", 4000), N: ptr(1),
			Size: "1024x1792", Quality: "hd", Style: "natural", ResponseFormat: "url"}},
		{"gpt-image-1 full", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", N: ptr(3), Size: "auto",
			Quality: "low", ResponseFormat: "b64_json", OutputFormat: "jpeg", OutputCompression: ptr(0),
			Background: "opaque", Moderation: "low", Stream: ptr(true), PartialImages: ptr(3)}},
		{"gpt-image-1 transparent passes compat", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Background: "transparent"}},
		{"local any multiple of 8", FamilyLocal, ImageGenerationRequest{Prompt: "p", Size: "640x360", Quality: "hd",
			Style: "vivid", ResponseFormat: "url", OutputFormat: "webp", OutputCompression: ptr(100)}},
		{"extensions", FamilyDallE2, ImageGenerationRequest{Prompt: "p", NegativePrompt: "n", Seed: ptr(uint64(MaxSeed)),
			Steps: ptr(150), GuidanceScale: ptr(0.0), Scheduler: "anything: the pipeline checks it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateGeneration(tt.req, mustRules(t, tt.family)); err != nil {
				t.Errorf("ValidateGeneration: %v", err)
			}
		})
	}
}

func TestValidateGenerationRejects(t *testing.T) {
	tests := []struct {
		name      string
		family    Family
		req       ImageGenerationRequest
		wantParam string
		wantCode  string
	}{
		{"missing prompt", FamilyDallE2, ImageGenerationRequest{}, "prompt", CodeMissingParameter},
		{"dall-e-2 prompt too long", FamilyDallE2, ImageGenerationRequest{Prompt: strings.Repeat("a", 1001)}, "prompt", CodeStringAboveMaxLength},
		{"dall-e-3 prompt too long", FamilyDallE3, ImageGenerationRequest{Prompt: strings.Repeat("a", 4001)}, "prompt", CodeStringAboveMaxLength},
		{"gpt prompt too long", FamilyGPTImage, ImageGenerationRequest{Prompt: strings.Repeat("a", 32001)}, "prompt", CodeStringAboveMaxLength},
		{"prompt bad utf-8", FamilyGPTImage, ImageGenerationRequest{Prompt: "a\xffb"}, "prompt", CodeInvalidValue},
		{"n zero", FamilyDallE2, ImageGenerationRequest{Prompt: "p", N: ptr(0)}, "n", CodeIntegerBelowMin},
		{"n eleven", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", N: ptr(11)}, "n", CodeIntegerAboveMax},
		{"dall-e-3 n two", FamilyDallE3, ImageGenerationRequest{Prompt: "p", N: ptr(2)}, "n", CodeInvalidValue},
		{"dall-e-2 size", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Size: "1792x1024"}, "size", CodeInvalidValue},
		{"dall-e-3 size", FamilyDallE3, ImageGenerationRequest{Prompt: "p", Size: "512x512"}, "size", CodeInvalidValue},
		{"dall-e-3 auto size", FamilyDallE3, ImageGenerationRequest{Prompt: "p", Size: "auto"}, "size", CodeInvalidValue},
		{"gpt size", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Size: "1792x1024"}, "size", CodeInvalidValue},
		{"local size not multiple of 8", FamilyLocal, ImageGenerationRequest{Prompt: "p", Size: "500x500"}, "size", CodeInvalidValue},
		{"local size garbage", FamilyLocal, ImageGenerationRequest{Prompt: "p", Size: "big"}, "size", CodeInvalidValue},
		{"dall-e-2 hd", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Quality: "hd"}, "quality", CodeInvalidValue},
		{"dall-e-3 high", FamilyDallE3, ImageGenerationRequest{Prompt: "p", Quality: "high"}, "quality", CodeInvalidValue},
		{"gpt standard", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Quality: "standard"}, "quality", CodeInvalidValue},
		{"dall-e-2 style", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Style: "vivid"}, "style", CodeUnsupportedParameter},
		{"gpt style", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Style: "vivid"}, "style", CodeUnsupportedParameter},
		{"dall-e-3 bad style", FamilyDallE3, ImageGenerationRequest{Prompt: "p", Style: "noir"}, "style", CodeInvalidValue},
		{"bad response_format", FamilyDallE2, ImageGenerationRequest{Prompt: "p", ResponseFormat: "png"}, "response_format", CodeInvalidValue},
		{"gpt url", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", ResponseFormat: "url"}, "response_format", CodeInvalidValue},
		{"dall-e-2 output_format", FamilyDallE2, ImageGenerationRequest{Prompt: "p", OutputFormat: "png"}, "output_format", CodeUnsupportedParameter},
		{"dall-e-3 output_format", FamilyDallE3, ImageGenerationRequest{Prompt: "p", OutputFormat: "jpeg"}, "output_format", CodeUnsupportedParameter},
		{"gpt bad output_format", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", OutputFormat: "gif"}, "output_format", CodeInvalidValue},
		{"dall-e-2 compression", FamilyDallE2, ImageGenerationRequest{Prompt: "p", OutputCompression: ptr(50)}, "output_compression", CodeUnsupportedParameter},
		{"compression with png", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", OutputCompression: ptr(50)}, "output_compression", CodeInvalidValue},
		{"compression above 100", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", OutputFormat: "jpeg", OutputCompression: ptr(101)}, "output_compression", CodeIntegerAboveMax},
		{"compression negative", FamilyLocal, ImageGenerationRequest{Prompt: "p", OutputFormat: "webp", OutputCompression: ptr(-1)}, "output_compression", CodeIntegerBelowMin},
		{"dall-e-3 background", FamilyDallE3, ImageGenerationRequest{Prompt: "p", Background: "opaque"}, "background", CodeUnsupportedParameter},
		{"gpt bad background", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Background: "white"}, "background", CodeInvalidValue},
		{"dall-e-2 moderation", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Moderation: "low"}, "moderation", CodeUnsupportedParameter},
		{"gpt bad moderation", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", Moderation: "high"}, "moderation", CodeInvalidValue},
		{"dall-e-2 stream", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Stream: ptr(false)}, "stream", CodeUnsupportedParameter},
		{"dall-e-3 partial_images", FamilyDallE3, ImageGenerationRequest{Prompt: "p", PartialImages: ptr(1)}, "partial_images", CodeUnsupportedParameter},
		{"partial_images above 3", FamilyGPTImage, ImageGenerationRequest{Prompt: "p", PartialImages: ptr(4)}, "partial_images", CodeIntegerAboveMax},
		{"negative prompt too long", FamilyDallE2, ImageGenerationRequest{Prompt: "p", NegativePrompt: strings.Repeat("a", 1001)}, "negative_prompt", CodeStringAboveMaxLength},
		{"seed above 2^53", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Seed: ptr(uint64(MaxSeed + 1))}, "seed", CodeIntegerAboveMax},
		{"steps zero", FamilyDallE2, ImageGenerationRequest{Prompt: "p", Steps: ptr(0)}, "steps", CodeIntegerBelowMin},
		{"steps 151", FamilyLocal, ImageGenerationRequest{Prompt: "p", Steps: ptr(151)}, "steps", CodeIntegerAboveMax},
		{"guidance negative", FamilyDallE3, ImageGenerationRequest{Prompt: "p", GuidanceScale: ptr(-1.0)}, "guidance_scale", CodeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateGeneration(tt.req, mustRules(t, tt.family))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Param != tt.wantParam || e.Code != tt.wantCode {
				t.Errorf("got param %q code %q, want %q %q (%s)", e.Param, e.Code, tt.wantParam, tt.wantCode, e.Message)
			}
			if e.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestDefaultModel(t *testing.T) {
	tests := []struct {
		name string
		req  ImageGenerationRequest
		want string
	}{
		{"nothing special", ImageGenerationRequest{Prompt: "p", Size: "1024x1024", Quality: "standard"}, "dall-e-2"},
		{"style alone stays dall-e-2", ImageGenerationRequest{Prompt: "p", Style: "vivid"}, "dall-e-2"},
		{"output_format", ImageGenerationRequest{Prompt: "p", OutputFormat: "png"}, "gpt-image-1"},
		{"output_compression", ImageGenerationRequest{Prompt: "p", OutputCompression: ptr(10)}, "gpt-image-1"},
		{"background", ImageGenerationRequest{Prompt: "p", Background: "auto"}, "gpt-image-1"},
		{"moderation", ImageGenerationRequest{Prompt: "p", Moderation: "auto"}, "gpt-image-1"},
		{"stream", ImageGenerationRequest{Prompt: "p", Stream: ptr(false)}, "gpt-image-1"},
		{"partial_images", ImageGenerationRequest{Prompt: "p", PartialImages: ptr(0)}, "gpt-image-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DefaultModel(tt.req); got != tt.want {
				t.Errorf("DefaultModel = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRulesForUnknown(t *testing.T) {
	if _, ok := RulesFor("dall-e-4"); ok {
		t.Error("RulesFor(dall-e-4) ok, want false")
	}
}

func TestAutoSize(t *testing.T) {
	tests := []struct {
		f          Family
		inW, inH   int
		wantW, wan int
		ok         bool
	}{
		{FamilyGPTImage, 0, 0, 1024, 1024, true},
		{FamilyGPTImage2, 0, 0, 1024, 1024, true},
		{FamilyGPTImage15, 200, 100, 1536, 1024, true},
		{FamilyGPTImageMini, 100, 200, 1024, 1536, true},
		{FamilyChatGPTImage, 110, 100, 1024, 1024, true}, // leans too little
		{FamilyGPTImage, 123, 100, 1536, 1024, true},
		{FamilyGPTImage, 100, 123, 1024, 1536, true},
		{FamilyGPTImage, 64, 64, 1024, 1024, true},
		{FamilyLocal, 0, 0, 0, 0, false},
		{FamilyDallE2, 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		w, h, ok := AutoSize(tt.f, tt.inW, tt.inH)
		if w != tt.wantW || h != tt.wan || ok != tt.ok {
			t.Errorf("AutoSize(%s, %d, %d) = %d, %d, %v; want %d, %d, %v", tt.f, tt.inW, tt.inH, w, h, ok, tt.wantW, tt.wan, tt.ok)
		}
	}
}
