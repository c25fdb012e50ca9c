package server

import (
	"context"
	"testing"

	"github.com/sdgate/sdgate/auth"
)

// With the server's default limits, a key created with no limits of its
// own gets OpenAI's rate-limit headers on every answer: 200, 400, 404 and
// the 429 of its own limit.
func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, err := auth.New(store, auth.Options{DefaultLimits: auth.Limits{RequestsPerMinute: 1, ImagesPerMinute: 20}})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, newFakeGenerator(), func(o *Options) { o.Gate = gate })
	answers := []struct {
		name   string
		status int
		a      apiAnswer
	}{
		{"200", 200, call(t, ts, "POST", "/v1/images/generations", key, `{"prompt":"a cat","model":"dall-e-2","size":"256x256","response_format":"b64_json"}`)},
		{"400", 400, call(t, ts, "POST", "/v1/images/generations", key, `{"prompt":"a cat","model":"dall-e-2","size":"7x7"}`)},
		{"404", 404, call(t, ts, "GET", "/v1/models/gpt-image-9", key, "")},
		{"200 models", 200, call(t, ts, "GET", "/v1/models", key, "")},
		{"429", 429, call(t, ts, "POST", "/v1/images/generations", key, `{"prompt":"a cat","model":"dall-e-2","size":"256x256"}`)},
	}
	for _, tt := range answers {
		if tt.a.status != tt.status {
			t.Fatalf("%s: status %d: %v", tt.name, tt.a.status, tt.a.body)
		}
		h := tt.a.header
		if h.Get(auth.HeaderLimitRequests) != "1" || h.Get(auth.HeaderLimitImages) != "20" ||
			h.Get(auth.HeaderRemainingRequests) == "" || h.Get(auth.HeaderResetRequests) == "" ||
			h.Get(auth.HeaderRemainingImages) == "" || h.Get(auth.HeaderResetImages) == "" {
			t.Errorf("%s: rate-limit headers %v", tt.name, h)
		}
	}
	if got := answers[0].a.header.Get(auth.HeaderRemainingRequests); got != "0" {
		t.Errorf("remaining after the first request: %q, want 0 (only image requests are counted)", got)
	}
	if got := answers[4].a.header.Get(auth.HeaderRemainingRequests); got != "0" {
		t.Errorf("remaining on the 429: %q, want 0", got)
	}
	// Unauthenticated answers carry none: there is no key to count against.
	if h := call(t, ts, "GET", "/v1/models", "", "").header; h.Get(auth.HeaderLimitRequests) != "" {
		t.Errorf("401 carries %v", h)
	}
}
