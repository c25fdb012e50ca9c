package compat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeImageGenerationRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want ImageGenerationRequest
	}{
		{"minimal", `{"prompt":"a cat"}`, ImageGenerationRequest{Prompt: "a cat"}},
		{"every field", `{"prompt":"p","model":"gpt-image-1","n":2,"size":"1024x1536","quality":"high",
			"style":"vivid","response_format":"b64_json","output_format":"webp","output_compression":0,
			"background":"opaque","moderation":"low","user":"u-1","stream":false,"partial_images":0,
			"negative_prompt":"blurry","seed":18446744073709551615,"steps":30,"guidance_scale":7.5,"scheduler":"euler"}`,
			ImageGenerationRequest{Prompt: "p", Model: "gpt-image-1", N: ptr(2), Size: "1024x1536",
				Quality: "high", Style: "vivid", ResponseFormat: "b64_json", OutputFormat: "webp",
				OutputCompression: ptr(0), Background: "opaque", Moderation: "low", User: "u-1",
				Stream: ptr(false), PartialImages: ptr(0), NegativePrompt: "blurry",
				Seed: ptr(uint64(18446744073709551615)), Steps: ptr(30), GuidanceScale: ptr(7.5), Scheduler: "euler"}},
		{"null is omitted", `{"prompt":"p","n":null,"size":null,"seed":null,"stream":null,"guidance_scale":null}`,
			ImageGenerationRequest{Prompt: "p"}},
		{"explicit zero n is kept", `{"prompt":"p","n":0}`, ImageGenerationRequest{Prompt: "p", N: ptr(0)}},
		{"surrounding whitespace", " \n{\"prompt\":\"p\"}\n ", ImageGenerationRequest{Prompt: "p"}},
		{"integer guidance", `{"prompt":"p","guidance_scale":7}`, ImageGenerationRequest{Prompt: "p", GuidanceScale: ptr(7.0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeImageGenerationRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeImageGenerationRequestErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantParam string
		wantCode  string
	}{
		{"empty body", ``, "", ""},
		{"not an object", `[1,2]`, "", ""},
		{"truncated", `{"prompt":"p"`, "", ""},
		{"trailing garbage", `{"prompt":"p"} x`, "", ""},
		{"string as object", `"prompt"`, "", ""},
		{"unknown field", `{"prompt":"p","temperature":1}`, "temperature", CodeUnknownParameter},
		{"prompt not a string", `{"prompt":5}`, "prompt", CodeInvalidType},
		{"n as string", `{"prompt":"p","n":"2"}`, "n", CodeInvalidType},
		{"n fractional", `{"prompt":"p","n":1.5}`, "n", CodeInvalidType},
		{"n exponent", `{"prompt":"p","n":1e1}`, "n", CodeInvalidType},
		{"n huge", `{"prompt":"p","n":123456789012345678901234567890}`, "n", CodeIntegerAboveMax},
		{"n hugely negative", `{"prompt":"p","n":-123456789012345678901234567890}`, "n", CodeIntegerBelowMin},
		{"seed negative", `{"prompt":"p","seed":-1}`, "seed", CodeIntegerBelowMin},
		{"seed too big", `{"prompt":"p","seed":18446744073709551616}`, "seed", CodeIntegerAboveMax},
		{"seed string", `{"prompt":"p","seed":"1"}`, "seed", CodeInvalidType},
		{"stream as string", `{"prompt":"p","stream":"true"}`, "stream", CodeInvalidType},
		{"guidance as bool", `{"prompt":"p","guidance_scale":true}`, "guidance_scale", CodeInvalidType},
		{"guidance overflow", `{"prompt":"p","guidance_scale":1e999}`, "guidance_scale", CodeInvalidValue},
		{"size as array", `{"prompt":"p","size":[1024,1024]}`, "size", CodeInvalidType},
		{"first bad field in name order", `{"prompt":"p","size":1,"n":"x"}`, "n", CodeInvalidType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeImageGenerationRequest([]byte(tt.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("errors.Is(err, ErrInvalidRequest) = false")
			}
			if e.Param != tt.wantParam || e.Code != tt.wantCode {
				t.Errorf("got param %q code %q, want %q %q (%s)", e.Param, e.Code, tt.wantParam, tt.wantCode, e.Message)
			}
			if tt.wantParam == "" && e.Message != MessageInvalidJSON {
				t.Errorf("message %q, want the invalid-JSON message", e.Message)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		w, h int
		ok   bool
	}{
		{"1024x1024", 1024, 1024, true},
		{"8x4096", 8, 4096, true},
		{"1792x1024", 1792, 1024, true},
		{"", 0, 0, false},
		{"1024", 0, 0, false},
		{"1024X1024", 0, 0, false},
		{"1024x", 0, 0, false},
		{"x1024", 0, 0, false},
		{"0x8", 0, 0, false},
		{"08x8", 0, 0, false},
		{"-8x8", 0, 0, false},
		{"+8x8", 0, 0, false},
		{" 8x8", 0, 0, false},
		{"8x8x8", 0, 0, false},
		{"4104x8", 0, 0, false},
		{"99999x8", 0, 0, false},
		{"８x8", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, h, err := ParseSize(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseSize(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if !tt.ok {
				if !errors.Is(err, ErrBadSize) {
					t.Errorf("err %v is not ErrBadSize", err)
				}
				return
			}
			if w != tt.w || h != tt.h {
				t.Errorf("got %dx%d, want %dx%d", w, h, tt.w, tt.h)
			}
			if FormatSize(w, h) != tt.in {
				t.Errorf("FormatSize round trip: %q", FormatSize(w, h))
			}
		})
	}
}
