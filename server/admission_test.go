package server

import (
	"github.com/sdgate/sdgate/internal/authtest"

	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/models"
)

// queueFake is the fake generator with a GPU queue that can be made full.
type queueFake struct {
	*fakeGenerator
	full atomic.Bool
}

func (q *queueFake) CheckQueue() error {
	if q.full.Load() {
		return &models.QueueFullError{Waiting: 3, RetryAfter: 2 * time.Second}
	}
	return nil
}

// gatedServer serves gen behind a real Gate on a temp SQLite store and
// returns the Server too, so tests can read its decode counter.
func gatedServer(t *testing.T, gen Backend, opts ...func(*Options)) (*httptest.Server, *Server, *auth.Gate) {
	t.Helper()
	gate, _ := authtest.Gate(t, auth.Options{})
	o := Options{Gate: gate}
	for _, apply := range opts {
		apply(&o)
	}
	s, err := New(gen, o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return ts, s, gate
}

func newKey(t *testing.T, gate *auth.Gate, spec auth.KeySpec) string {
	t.Helper()
	secret, _, err := gate.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// postEdit sends an edit with key; parts follow the image part, so the
// image comes before the model field, the worst order for the server.
func postEdit(t *testing.T, ts *httptest.Server, key string, img []byte, parts ...formPart) (int, map[string]any, http.Header) {
	t.Helper()
	all := append([]formPart{filePart("image", img)}, parts...)
	body, ct := multipartBody(t, all...)
	r := do(t, ts.Client(), http.MethodPost, ts.URL+"/v1/images/edits", ct, string(body), "Authorization", "Bearer "+key)
	var m map[string]any
	json.Unmarshal(r.body, &m)
	return r.status, m, r.header
}

func errFields(m map[string]any) (code, param, message string) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	param, _ = e["param"].(string)
	message, _ = e["message"].(string)
	return
}

// TestAdmissionBeforeDecode: a 4096x4096 header with no pixels behind it
// would fail to decode (400), so any other answer proves the server
// decided without decoding; the decode counter says so too.
func TestAdmissionBeforeDecode(t *testing.T) {
	gen := &queueFake{fakeGenerator: editFake()}
	ts, s, gate := gatedServer(t, gen)
	bomb := pngHeader(4096, 4096)
	noModels := newKey(t, gate, auth.KeySpec{Name: "none", Models: []string{"other-*"}})
	oneRPM := newKey(t, gate, auth.KeySpec{Name: "rpm", Limits: auth.Limits{RequestsPerMinute: 1}})
	prompt := textPart("prompt", "a hat")

	start := time.Now()
	status, body, _ := postEdit(t, ts, noModels, bomb, prompt, textPart("model", "dall-e-2"))
	code, _, msg := errFields(body)
	if status != http.StatusNotFound || code != "model_not_found" {
		t.Fatalf("no-access key: %d %s, want 404 model_not_found", status, code)
	}
	if strings.Contains(msg, "sd-tiny") {
		t.Errorf("404 names the alias target: %q", msg)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("404 took %v", took)
	}

	// The first request spends the minute's only request and fails to decode.
	if status, body, _ := postEdit(t, ts, oneRPM, bomb, prompt, textPart("model", "sd-tiny")); status != http.StatusBadRequest {
		t.Fatalf("first rpm request: %d %v, want 400 (undecodable)", status, body)
	}
	if got := s.decodes.started.Load(); got != 1 {
		t.Fatalf("decodes started = %d, want 1", got)
	}
	status, body, hdr := postEdit(t, ts, oneRPM, bomb, prompt, textPart("model", "sd-tiny"))
	if code, _, _ := errFields(body); status != http.StatusTooManyRequests || code != "rate_limit_exceeded" || hdr.Get("Retry-After") == "" {
		t.Fatalf("second rpm request: %d %s (Retry-After %q), want 429 rate_limit_exceeded", status, code, hdr.Get("Retry-After"))
	}

	gen.full.Store(true)
	other := newKey(t, gate, auth.KeySpec{Name: "other"})
	status, _, hdr = postEdit(t, ts, other, bomb, prompt, textPart("model", "sd-tiny"))
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "2" {
		t.Fatalf("full queue: %d Retry-After %q, want 429 and 2", status, hdr.Get("Retry-After"))
	}
	if got := s.decodes.started.Load(); got != 1 {
		t.Errorf("decodes started = %d after refusals, want still 1", got)
	}
}

// TestEarlyAdmissionSettled: a request admitted and then refused for its
// image gives back its reserved quota and leaves a usage record.
func TestEarlyAdmissionSettled(t *testing.T) {
	ts, _, gate := gatedServer(t, editFake())
	key := newKey(t, gate, auth.KeySpec{Name: "quota", Limits: auth.Limits{ImageQuota: 1}})
	prompt, model := textPart("prompt", "a hat"), textPart("model", "sd-tiny")
	for i := range 3 {
		if status, body, _ := postEdit(t, ts, key, pngHeader(64, 64), prompt, model); status != http.StatusBadRequest {
			t.Fatalf("attempt %d: %d %v, want 400: quota must come back after a bad image", i, status, body)
		}
	}
	good := encodeTo(t, "png", testPicture(64, 64, image.Rect(0, 0, 8, 8)))
	if status, body, _ := postEdit(t, ts, key, good, prompt, model); status != http.StatusOK {
		t.Fatalf("good edit: %d %v", status, body)
	}
	days, err := gate.Usage(context.Background(), nil, "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var reqs, failed int64
	for _, d := range days {
		reqs, failed = reqs+d.Requests, failed+d.Failed
	}
	if reqs != 4 || failed != 3 {
		t.Errorf("usage: %d requests, %d failed; want 4 and 3", reqs, failed)
	}
}

func TestPixelBounds(t *testing.T) {
	gen := editFake()
	ts, s, gate := gatedServer(t, gen, func(o *Options) {
		o.MaxInputPixels = 200 * 200
		o.MaxRequestPixels = 10 * 32 * 32
		o.DecodeBudget = 300_000 // a 200x200 RGBA decode needs 360 kB
	})
	key := newKey(t, gate, auth.KeySpec{Name: "k"})
	prompt, model := textPart("prompt", "a hat"), textPart("model", "sd-tiny")
	tests := []struct {
		name         string
		img          []byte
		parts        []formPart
		status       int
		param, code  string
		wantDecoded  bool
		wantW, wantH int
	}{
		{"input above MaxInputPixels", pngHeader(300, 200), nil, 400, "image", "image_too_large", false, 0, 0},
		{"decode above the budget", pngHeader(200, 200), nil, 413, "image", "image_too_large", false, 0, 0},
		{"n x size above the request bound", pngHeader(64, 64), []formPart{textPart("n", "3"), textPart("size", "64x64")}, 400, "n", "invalid_value", false, 0, 0},
		{"local size above the model's side", pngHeader(64, 64), []formPart{textPart("size", "512x512")}, 400, "size", "invalid_value", false, 0, 0},
		{"auto shrinks to fit n", encodeTo(t, "png", testPicture(96, 48, image.Rectangle{})), []formPart{textPart("n", "10")}, 200, "", "", true, 45, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.decodes.started.Load()
			parts := append([]formPart{prompt, model}, tt.parts...)
			status, body, _ := postEdit(t, ts, key, tt.img, parts...)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%v)", status, tt.status, body)
			}
			if code, param, _ := errFields(body); tt.status != 200 && (code != tt.code || param != tt.param) {
				t.Errorf("code %q param %q, want %q %q", code, param, tt.code, tt.param)
			}
			if decoded := s.decodes.started.Load() > before; decoded != tt.wantDecoded {
				t.Errorf("decoded = %v, want %v", decoded, tt.wantDecoded)
			}
			if tt.status != 200 {
				return
			}
			data, _ := body["data"].([]any)
			if len(data) != 10 {
				t.Fatalf("%d images, want 10", len(data))
			}
			first, _ := data[0].(map[string]any)
			b64, _ := first["b64_json"].(string)
			cfg, err := png.DecodeConfig(base64.NewDecoder(base64.StdEncoding, strings.NewReader(b64)))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Width != tt.wantW || cfg.Height != tt.wantH {
				t.Errorf("delivered %dx%d, want %dx%d", cfg.Width, cfg.Height, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestDecodeGateWaitsThenRefuses(t *testing.T) {
	g := newDecodeGate(100, 50*time.Millisecond)
	release, err := g.acquire(context.Background(), 80)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = g.acquire(context.Background(), 30)
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusTooManyRequests || !he.retry {
		t.Fatalf("busy gate: %v, want 429 with retry", err)
	}
	if took := time.Since(start); took < 40*time.Millisecond || took > time.Second {
		t.Errorf("waited %v, want about 50ms", took)
	}
	release()
	release2, err := g.acquire(context.Background(), 100)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release2()
}
