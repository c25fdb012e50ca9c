package compat

import (
	"errors"
	"testing"
)

// The GPT families other than gpt-image-1 share its rules under their own
// names; gpt-image-2 adds free-form sizes.
func TestNewGPTFamiliesFollowGPTImage1(t *testing.T) {
	base := mustRules(t, FamilyGPTImage)
	for _, f := range []Family{FamilyGPTImageMini, FamilyGPTImage15, FamilyChatGPTImage, FamilyGPTImage2} {
		t.Run(string(f), func(t *testing.T) {
			r := mustRules(t, f)
			if r.Family != f {
				t.Errorf("Family = %q", r.Family)
			}
			if !IsGPTImage(f) {
				t.Error("IsGPTImage false")
			}
			if r.MaxPromptChars != base.MaxPromptChars || r.MaxN != base.MaxN || r.DefaultSize != base.DefaultSize ||
				r.DefaultQuality != base.DefaultQuality || r.DefaultResponseFormat != base.DefaultResponseFormat ||
				r.Compression != base.Compression || r.Streaming != base.Streaming || r.Usage != base.Usage || r.AnySize {
				t.Errorf("rules differ from gpt-image-1: %+v", r)
			}
			if (r.FreeSize != nil) != (f == FamilyGPTImage2) {
				t.Errorf("FreeSize = %v", r.FreeSize)
			}
			er := EditRulesFor(f)
			if !er.Edits || er.Variations || er.MaxImages != MaxEditImages || er.InputFidelities == nil {
				t.Errorf("EditRulesFor = %+v", er)
			}
		})
	}
	for _, f := range []Family{FamilyDallE2, FamilyDallE3, FamilyLocal, "gpt-image-3"} {
		if IsGPTImage(f) {
			t.Errorf("IsGPTImage(%q) true", f)
		}
	}
}

func TestFamilySizeRules(t *testing.T) {
	tests := []struct {
		family  Family
		size    string
		wantMsg string // "" when the size is accepted
	}{
		{FamilyGPTImageMini, "1536x1024", ""},
		{FamilyGPTImageMini, "auto", ""},
		{FamilyGPTImageMini, "1792x1024", "Invalid 'size': '1792x1024'. Supported values for gpt-image-1-mini are: '1024x1024', '1536x1024', '1024x1536', 'auto'."},
		{FamilyGPTImage15, "1024x1536", ""},
		{FamilyGPTImage15, "2048x2048", "Invalid 'size': '2048x2048'. Supported values for gpt-image-1.5 are: '1024x1024', '1536x1024', '1024x1536', 'auto'."},
		{FamilyChatGPTImage, "1024x1024", ""},
		{FamilyChatGPTImage, "512x512", "Invalid 'size': '512x512'. Supported values for chatgpt-image-latest are: '1024x1024', '1536x1024', '1024x1536', 'auto'."},

		{FamilyGPTImage2, "auto", ""},
		{FamilyGPTImage2, "1536x1024", ""},
		{FamilyGPTImage2, "3840x2160", ""}, // the largest
		{FamilyGPTImage2, "2160x3840", ""}, // portrait
		{FamilyGPTImage2, "1024x640", ""},  // exactly MinPixels
		{FamilyGPTImage2, "2016x672", ""},  // exactly 3:1
		{FamilyGPTImage2, "1280x720", ""},  // 16:9 free size
		{FamilyGPTImage2, "1000x1000", "Invalid 'size': '1000x1000'. Both sides must be multiples of 16."},
		{FamilyGPTImage2, "1024x1032", "Invalid 'size': '1024x1032'. Both sides must be multiples of 16."},
		{FamilyGPTImage2, "3856x1296", "Invalid 'size': '3856x1296'. The longest side must be at most 3840 pixels."},
		{FamilyGPTImage2, "4096x4096", "Invalid 'size': '4096x4096'. The longest side must be at most 3840 pixels."},
		{FamilyGPTImage2, "2048x672", "Invalid 'size': '2048x672'. The aspect ratio (long side to short side) must be at most 3:1."},
		{FamilyGPTImage2, "672x2048", "Invalid 'size': '672x2048'. The aspect ratio (long side to short side) must be at most 3:1."},
		{FamilyGPTImage2, "3840x2176", "Invalid 'size': '3840x2176'. The total pixel count must be between 655360 and 8294400, but got 8355840."},
		{FamilyGPTImage2, "512x512", "Invalid 'size': '512x512'. The total pixel count must be between 655360 and 8294400, but got 262144."},
		{FamilyGPTImage2, "big", "Invalid 'size': 'big'. Expected 'auto' or WIDTHxHEIGHT with both sides multiples of 16."},
		{FamilyGPTImage2, "01024x1024", "Invalid 'size': '01024x1024'. Expected 'auto' or WIDTHxHEIGHT with both sides multiples of 16."},
		{FamilyGPTImage2, "5008x2000", "Invalid 'size': '5008x2000'. Expected 'auto' or WIDTHxHEIGHT with both sides multiples of 16."},
	}
	for _, tt := range tests {
		t.Run(string(tt.family)+"/"+tt.size, func(t *testing.T) {
			r := mustRules(t, tt.family)
			errs := []error{
				ValidateGeneration(ImageGenerationRequest{Prompt: "p", Size: tt.size}, r),
				ValidateEdit(ImageEditRequest{Prompt: "p", Size: tt.size, Images: []Upload{{Field: "image", Filename: "a.png", Data: []byte("x")}}}, r),
			}
			for i, err := range errs {
				if tt.wantMsg == "" {
					if err != nil {
						t.Errorf("[%d] got %v, want accepted", i, err)
					}
					continue
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("[%d] got %v, want *Error", i, err)
				}
				if e.Param != "size" || e.Code != CodeInvalidValue || e.Message != tt.wantMsg {
					t.Errorf("[%d] got param %q code %q message %q, want size %q %q", i, e.Param, e.Code, e.Message, CodeInvalidValue, tt.wantMsg)
				}
			}
		})
	}
}
