package compat

import (
	"errors"
	"strings"
	"testing"
)

func upload(field string, size int) Upload {
	return Upload{Field: field, Data: []byte(strings.Repeat("x", size))}
}

func uploads(n int) []Upload {
	out := make([]Upload, n)
	for i := range out {
		out[i] = upload("image[]", 10)
	}
	return out
}

func TestValidateEdit(t *testing.T) {
	one := []Upload{upload("image", 10)}
	mask := upload("mask", 10)
	tests := []struct {
		name      string
		family    Family
		req       ImageEditRequest
		wantParam string // "" = valid
		wantCode  string
	}{
		{"dall-e-2 minimal", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p"}, "", ""},
		{"dall-e-2 with mask, n, size", FamilyDallE2, ImageEditRequest{Images: one, Mask: &mask, Prompt: "p",
			N: ptr(3), Size: "512x512", ResponseFormat: "url"}, "", ""},
		{"gpt-image-1 full", FamilyGPTImage, ImageEditRequest{Images: []Upload{upload("image[]", 10)}, Prompt: "p",
			Size: "1536x1024", Quality: "high", OutputFormat: "jpeg", OutputCompression: ptr(80), Background: "opaque",
			InputFidelity: "low", Stream: ptr(false), Strength: ptr(1.0), Seed: ptr(uint64(1))}, "", ""},
		{"local any size", FamilyLocal, ImageEditRequest{Images: one, Prompt: "p", Size: "96x64", Strength: ptr(0.01)}, "", ""},
		{"gpt-image-1 streamed", FamilyGPTImage, ImageEditRequest{Images: one, Prompt: "p", Stream: ptr(true), PartialImages: ptr(3)}, "", ""},
		{"dall-e-2 image at 4 MiB", FamilyDallE2, ImageEditRequest{Images: []Upload{upload("image", MaxDallE2ImageBytes)}, Prompt: "p"}, "", ""},

		{"dall-e-3 has no edits", FamilyDallE3, ImageEditRequest{Images: one, Prompt: "p"}, "model", CodeInvalidValue},
		{"no image", FamilyDallE2, ImageEditRequest{Prompt: "p"}, "image", CodeMissingParameter},
		{"no prompt", FamilyGPTImage, ImageEditRequest{Images: one}, "prompt", CodeMissingParameter},
		{"dall-e-2 two images", FamilyDallE2, ImageEditRequest{Images: uploads(2), Prompt: "p"}, "image", CodeInvalidValue},
		{"gpt-image-1 seventeen images", FamilyGPTImage, ImageEditRequest{Images: uploads(17), Prompt: "p"}, "image", CodeInvalidValue},
		{"gpt-image-1 two images: one init image only", FamilyGPTImage, ImageEditRequest{Images: uploads(2), Prompt: "p"}, "image", CodeInvalidValue},
		{"dall-e-2 image over 4 MiB", FamilyDallE2, ImageEditRequest{Images: []Upload{upload("image", MaxDallE2ImageBytes+1)}, Prompt: "p"}, "image", CodeImageTooLarge},
		{"empty image", FamilyLocal, ImageEditRequest{Images: []Upload{upload("image", 0)}, Prompt: "p"}, "image", CodeInvalidImage},
		{"gpt-image-1 mask over 4 MiB", FamilyGPTImage, ImageEditRequest{Images: one, Mask: ptr(upload("mask", MaxMaskBytes+1)), Prompt: "p"}, "mask", CodeImageTooLarge},
		{"dall-e-2 size", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", Size: "1536x1024"}, "size", CodeInvalidValue},
		{"dall-e-2 output_format", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", OutputFormat: "png"}, "output_format", CodeUnsupportedParameter},
		{"dall-e-2 input_fidelity", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", InputFidelity: "high"}, "input_fidelity", CodeUnsupportedParameter},
		{"bad input_fidelity", FamilyGPTImage, ImageEditRequest{Images: one, Prompt: "p", InputFidelity: "max"}, "input_fidelity", CodeInvalidValue},
		{"strength 0", FamilyLocal, ImageEditRequest{Images: one, Prompt: "p", Strength: ptr(0.0)}, "strength", CodeInvalidValue},
		{"strength above 1", FamilyLocal, ImageEditRequest{Images: one, Prompt: "p", Strength: ptr(1.5)}, "strength", CodeInvalidValue},
		{"gpt-image-1.5 multipart quality standard", FamilyGPTImage15, ImageEditRequest{Images: one, Prompt: "p", Quality: "standard"}, "", ""},
		{"gpt-image-1.5 JSON quality standard", FamilyGPTImage15, ImageEditRequest{JSON: true, Images: []Upload{upload(FieldImages, 10)}, Prompt: "p", Quality: "standard"}, "quality", CodeInvalidValue},
		{"gpt-image-1.5 JSON with mask", FamilyGPTImage15, ImageEditRequest{JSON: true, Images: []Upload{upload(FieldImages, 10)}, Mask: &mask, Prompt: "p"}, "", ""},
		{"gpt-image-2 image at 50 MiB", FamilyGPTImage2, ImageEditRequest{Images: []Upload{upload("image", MaxUploadBytes)}, Prompt: "p"}, "", ""},
		{"gpt-image-2 image over 50 MiB", FamilyGPTImage2, ImageEditRequest{Images: []Upload{upload("image", MaxUploadBytes+1)}, Prompt: "p"}, "image", CodeImageTooLarge},
		{"JSON two images", FamilyGPTImage, ImageEditRequest{JSON: true, Images: []Upload{upload(FieldImages, 1), upload(FieldImages, 1)}, Prompt: "p"}, "images", CodeInvalidValue},
		{"JSON body on dall-e-2", FamilyDallE2, ImageEditRequest{JSON: true, Images: []Upload{upload(FieldImages, 10)}, Prompt: "p"}, "model", CodeInvalidValue},
		{"dall-e-2 quality standard", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", Quality: "standard"}, "", ""},
		{"dall-e-2 stream", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", Stream: ptr(true)}, "stream", CodeUnsupportedParameter},
		{"partial_images above 3", FamilyGPTImage, ImageEditRequest{Images: one, Prompt: "p", Stream: ptr(true), PartialImages: ptr(4)}, "partial_images", CodeIntegerAboveMax},
		{"dall-e-2 n 11", FamilyDallE2, ImageEditRequest{Images: one, Prompt: "p", N: ptr(11)}, "n", CodeIntegerAboveMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErr(t, ValidateEdit(tt.req, mustRules(t, tt.family)), tt.wantParam, tt.wantCode)
		})
	}
}

func TestValidateVariation(t *testing.T) {
	one := []Upload{upload("image", 10)}
	tests := []struct {
		name      string
		family    Family
		req       ImageVariationRequest
		wantParam string
		wantCode  string
	}{
		{"dall-e-2 minimal, no prompt", FamilyDallE2, ImageVariationRequest{Images: one}, "", ""},
		{"local with extensions", FamilyLocal, ImageVariationRequest{Images: one, Prompt: "p", Size: "64x96",
			Strength: ptr(0.3), Steps: ptr(10), GuidanceScale: ptr(3.0), Seed: ptr(uint64(5))}, "", ""},
		{"gpt-image-1 has no variations", FamilyGPTImage, ImageVariationRequest{Images: one}, "model", CodeInvalidValue},
		{"dall-e-3 has no variations", FamilyDallE3, ImageVariationRequest{Images: one}, "model", CodeInvalidValue},
		{"no image", FamilyDallE2, ImageVariationRequest{}, "image", CodeMissingParameter},
		{"two images", FamilyLocal, ImageVariationRequest{Images: uploads(2)}, "image", CodeInvalidValue},
		{"too large", FamilyDallE2, ImageVariationRequest{Images: []Upload{upload("image", MaxDallE2ImageBytes+1)}}, "image", CodeImageTooLarge},
		{"size", FamilyDallE2, ImageVariationRequest{Images: one, Size: "100x100"}, "size", CodeInvalidValue},
		{"response_format", FamilyDallE2, ImageVariationRequest{Images: one, ResponseFormat: "png"}, "response_format", CodeInvalidValue},
		{"prompt too long", FamilyDallE2, ImageVariationRequest{Images: one, Prompt: strings.Repeat("a", 1001)}, "prompt", CodeStringAboveMaxLength},
		{"seed too large", FamilyLocal, ImageVariationRequest{Images: one, Seed: ptr(uint64(MaxSeed + 1))}, "seed", CodeIntegerAboveMax},
		{"strength", FamilyLocal, ImageVariationRequest{Images: one, Strength: ptr(-0.5)}, "strength", CodeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErr(t, ValidateVariation(tt.req, mustRules(t, tt.family)), tt.wantParam, tt.wantCode)
		})
	}
}

func checkFieldErr(t *testing.T, err error, wantParam, wantCode string) {
	t.Helper()
	if wantParam == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error for %s", err, wantParam)
	}
	if e.Param != wantParam || e.Code != wantCode || e.Message == "" {
		t.Errorf("got %q %q (%s), want %q %q", e.Param, e.Code, e.Message, wantParam, wantCode)
	}
	if !errors.Is(err, ErrInvalidRequest) {
		t.Error("not ErrInvalidRequest")
	}
}

func TestDefaultEditModel(t *testing.T) {
	// Upstream's default for edits without "model", whatever else is sent.
	if DefaultEditModel != "gpt-image-1.5" {
		t.Errorf("DefaultEditModel = %s, want gpt-image-1.5", DefaultEditModel)
	}
	if _, ok := RulesFor(Family(DefaultEditModel)); !ok {
		t.Errorf("DefaultEditModel %s has no rules", DefaultEditModel)
	}
}

// The new edit rules answer these exact messages.
func TestEditRuleMessages(t *testing.T) {
	json1 := []Upload{upload(FieldImages, 10)}
	tests := []struct {
		family Family
		req    ImageEditRequest
		param  string
		msg    string
	}{
		{FamilyDallE2, ImageEditRequest{JSON: true, Images: json1, Prompt: "p"}, "model",
			"Invalid 'model': JSON edit bodies support GPT image models only; send dall-e-2 edits as multipart/form-data."},
		{FamilyGPTImage15, ImageEditRequest{JSON: true, Images: []Upload{upload(FieldImages, 1), upload(FieldImages, 1)}, Prompt: "p"}, "images",
			"Invalid 'images': sdgate edits one image per request (Stable Diffusion starts from a single image), but 2 were sent. This is a deliberate difference from upstream, which composes up to 16."},
		{FamilyGPTImage15, ImageEditRequest{JSON: true, Images: json1, Prompt: "p", Quality: "standard"}, "quality",
			"Invalid value for 'quality': 'standard'. Supported values are: 'low', 'medium', 'high', 'auto'."},
		{FamilyGPTImage15, ImageEditRequest{Images: []Upload{upload("image", 10)}, Prompt: "p", Quality: "hd"}, "quality",
			"Invalid value for 'quality': 'hd'. Supported values are: 'low', 'medium', 'high', 'auto', 'standard'."},
		{FamilyGPTImage2, ImageEditRequest{Images: []Upload{upload("image", MaxUploadBytes+1)}, Prompt: "p"}, "image",
			"Invalid 'image': the file must be less than 50 MB, but it has 52428801 bytes."},
	}
	for _, tt := range tests {
		err := ValidateEdit(tt.req, mustRules(t, tt.family))
		var e *Error
		if !errors.As(err, &e) || e.Param != tt.param || e.Message != tt.msg {
			t.Errorf("%s: got %v, want %s: %s", tt.family, err, tt.param, tt.msg)
		}
	}
}
