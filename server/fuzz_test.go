package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/compat"
)

// FuzzGenerationsHandler: whatever the body, the server answers 200 with
// images or a client error in the envelope, never a 5xx.
func FuzzGenerationsHandler(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"a cat","size":"256x256"}`,
		`{"prompt":"a cat","model":"gpt-image-1","output_format":"jpeg","output_compression":5}`,
		`{"prompt":"a cat","model":"sd-tiny","size":"16x8","n":2,"seed":3,"steps":2,"guidance_scale":1.5}`,
		`{"prompt":"a cat","model":"dall-e-3","style":"natural","quality":"hd","response_format":"url"}`,
		`{"prompt":"x","model":"sd-tiny","stream":true}`,
		`{"prompt":"x","scheduler":"nope"}`, `{"prompt":1}`, `{}`, `[]`, ``, `{"prompt":"x","n":1e3}`,
	} {
		f.Add(seed)
	}
	s, err := New(newFakeGenerator(), Options{BodyLimit: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, `"n"`) && len(body) > 200 {
			t.Skip("large n x size combinations only cost time")
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		checkFuzzAnswer(t, h, req, body)
	})
}

// checkFuzzAnswer serves req and insists on what every fuzzed request must
// get: a 200, or a non-5xx answer in OpenAI's error envelope.
func checkFuzzAnswer[B ~string | ~[]byte](t *testing.T, h http.Handler, req *http.Request, body B) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	switch {
	case rec.Code == http.StatusOK:
		return
	case rec.Code >= 500:
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	var env compat.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Message == "" || env.Error.Type == "" {
		t.Fatalf("status %d without an envelope for %q: %s", rec.Code, body, rec.Body)
	}
}
