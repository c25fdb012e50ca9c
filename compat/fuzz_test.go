package compat

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeGenerationRequest: any body either decodes or yields *Error, and
// what decodes and validates re-encodes to a body that decodes to the same.
func FuzzDecodeGenerationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"a cat","n":2,"size":"512x512"}`,
		`{"prompt":"p","model":"gpt-image-1","output_format":"jpeg","output_compression":50,"background":"opaque"}`,
		`{"prompt":"p","seed":12345,"steps":20,"guidance_scale":7.5,"scheduler":"euler","negative_prompt":"x"}`,
		`{"prompt":"p","n":"2"}`, `{"prompt":null}`, `[]`, `{`, ``, `{"prompt":"p","x":1}`,
		`{"prompt":"p","seed":-1}`, `{"prompt":"p","guidance_scale":1e999}`,
		`{"prompt":"p","loras":[{"name":"style","scale":0.8},{"name":"ink"}]}`, `{"prompt":"p","loras":[{"name":"a","x":1}]}`,
		`{"prompt":"p","loras":[1]}`, `{"prompt":"p","loras":{}}`,
	} {
		f.Add([]byte(seed))
	}
	families := []Family{FamilyDallE2, FamilyDallE3, FamilyGPTImage, FamilyLocal}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeImageGenerationRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("decode error %v is not a *Error with a message", err)
			}
			return
		}
		for _, f := range families {
			verr := ValidateGeneration(req, mustRules(t, f))
			var e *Error
			if verr != nil && (!errors.As(verr, &e) || e.Param == "") {
				t.Fatalf("validate error %v lacks a param", verr)
			}
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := DecodeImageGenerationRequest(again)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if string(mustJSON(t, back)) != string(again) {
			t.Fatalf("round trip changed the request:\n%s\n%s", again, mustJSON(t, back))
		}
	})
}

// FuzzParseSize: accepted sizes are in range and format back to the input.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1024x1024", "8x8", "0x0", "x", "4097x8", "01x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, h, err := ParseSize(s)
		if err != nil {
			return
		}
		if w < 1 || h < 1 || w > MaxSide || h > MaxSide || FormatSize(w, h) != s {
			t.Fatalf("ParseSize(%q) = %d, %d", s, w, h)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
