package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// rawResponse is an answer read whole, for tests below the SDK level.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, client *http.Client, method, url, contentType, body string, header ...string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: data}
}

func postJSON(t *testing.T, client *http.Client, url, body string, header ...string) rawResponse {
	t.Helper()
	return do(t, client, http.MethodPost, url+"/v1/images/generations", "application/json", body, header...)
}

// envelope checks the body is OpenAI's error envelope with all four keys
// and returns it.
func envelope(t *testing.T, r rawResponse) compat.ErrorBody {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	for _, key := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][key]; !ok {
			t.Errorf("error body %s lacks %q", r.body, key)
		}
	}
	var env compat.ErrorResponse
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Error.Message == "" || env.Error.Type == "" {
		t.Errorf("error body %s lacks message or type", r.body)
	}
	return env.Error
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func TestErrorsOverHTTP(t *testing.T) {
	gen := newFakeGenerator()
	ts := startServer(t, gen, func(o *Options) { o.BodyLimit = 4096 })
	c := ts.Client()
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantType    string
		wantParam   string // "<null>" for null
		wantCode    string
	}{
		{"malformed json", "POST", "/v1/images/generations", "application/json", `{"prompt":`, 400, "invalid_request_error", "<null>", "<null>"},
		{"json array", "POST", "/v1/images/generations", "application/json", `["prompt"]`, 400, "invalid_request_error", "<null>", "<null>"},
		{"empty body", "POST", "/v1/images/generations", "application/json", ``, 400, "invalid_request_error", "<null>", "<null>"},
		{"form content type", "POST", "/v1/images/generations", "application/x-www-form-urlencoded", `prompt=x`, 400, "invalid_request_error", "<null>", "<null>"},
		{"no content type", "POST", "/v1/images/generations", "", `{"prompt":"x"}`, 400, "invalid_request_error", "<null>", "<null>"},
		{"json with charset", "POST", "/v1/images/generations", "application/json; charset=utf-8", `{"prompt":"x","n":0}`, 400, "invalid_request_error", "n", "integer_below_min_value"},
		{"unknown field", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","temperature":1}`, 400, "invalid_request_error", "temperature", "unknown_parameter"},
		{"n as string", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","n":"2"}`, 400, "invalid_request_error", "n", "invalid_type"},
		{"prompt too long for dall-e-2", "POST", "/v1/images/generations", "application/json", `{"prompt":"` + strings.Repeat("a", 1001) + `"}`, 400, "invalid_request_error", "prompt", "string_above_max_length"},
		{"seed negative", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","seed":-5}`, 400, "invalid_request_error", "seed", "integer_below_min_value"},
		{"steps above 150", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","steps":151}`, 400, "invalid_request_error", "steps", "integer_above_max_value"},
		{"guidance beyond the model", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","guidance_scale":99}`, 400, "invalid_request_error", "guidance_scale", "invalid_value"},
		{"unknown scheduler", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","scheduler":"warp"}`, 400, "invalid_request_error", "scheduler", "invalid_value"},
		{"partial_images on dall-e-2", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","model":"dall-e-2","partial_images":1}`, 400, "invalid_request_error", "partial_images", "unsupported_parameter"},
		{"stream with url", "POST", "/v1/images/generations", "application/json", `{"prompt":"x","model":"sd-tiny","stream":true,"response_format":"url"}`, 400, "invalid_request_error", "response_format", "invalid_value"},
		{"body too large", "POST", "/v1/images/generations", "application/json", `{"prompt":"` + strings.Repeat("a", 5000) + `"}`, 413, "invalid_request_error", "<null>", "request_too_large"},
		{"unknown route", "GET", "/v1/nothing", "", ``, 404, "invalid_request_error", "<null>", "<null>"},
		{"wrong method", "GET", "/v1/images/generations", "", ``, 404, "invalid_request_error", "<null>", "<null>"},
		{"trailing slash", "POST", "/v1/images/generations/", "application/json", `{"prompt":"x"}`, 404, "invalid_request_error", "<null>", "<null>"},
		{"edits without a multipart boundary", "POST", "/v1/images/edits", "multipart/form-data", ``, 400, "invalid_request_error", "<null>", "<null>"},
		{"unknown model by id", "GET", "/v1/models/nope", "", ``, 404, "invalid_request_error", "model", "model_not_found"},
		{"unknown image", "GET", "/v1/files/images/00000000000000000000000000000000.png", "", ``, 404, "invalid_request_error", "<null>", "file_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, tt.method, ts.URL+tt.path, tt.contentType, tt.body)
			if r.status != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			e := envelope(t, r)
			if e.Type != tt.wantType || deref(e.Param) != tt.wantParam || deref(e.Code) != tt.wantCode {
				t.Errorf("type %q param %s code %s, want %q %s %s (%s)", e.Type, deref(e.Param), deref(e.Code),
					tt.wantType, tt.wantParam, tt.wantCode, e.Message)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
		})
	}
	if n := gen.calls.Load(); n != 2 {
		t.Errorf("generator called %d times, want 2 (only the cases the pipeline validates)", n)
	}
}

func TestGeneratorErrorsMapToStatuses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantCode   string
		wantRetry  string
		wantMsg    string
	}{
		{"queue full with estimate", &models.QueueFullError{Waiting: 3, RetryAfter: 2500 * time.Millisecond}, 429, "requests", "rate_limit_exceeded", "3", ""},
		{"queue full bare", models.ErrQueueFull, 429, "requests", "rate_limit_exceeded", "7", ""},
		{"queue timeout", models.ErrQueueTimeout, 503, "server_error", "engine_overloaded", "7", ""},
		{"closed", models.ErrClosed, 503, "server_error", "engine_overloaded", "7", ""},
		{"no worker", fmt.Errorf("wrapped: %w", models.ErrNoWorker), 503, "server_error", "no_worker_available", "7", ""},
		{"deadline", context.DeadlineExceeded, 504, "server_error", "timeout", "", ""},
		{"model vanished", models.ErrModelNotFound, 404, "invalid_request_error", "model_not_found", "", ""},
		{"anything else", errors.New("onnxruntime: CUDA out of memory at /secret/path"), 500, "server_error", "<null>", "", messageServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := newFakeGenerator()
			gen.fail(tt.err)
			ts := startServer(t, gen, func(o *Options) { o.RetryAfter = 7 * time.Second })
			r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x"}`)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			e := envelope(t, r)
			if e.Type != tt.wantType || deref(e.Code) != tt.wantCode {
				t.Errorf("type %q code %s, want %q %s", e.Type, deref(e.Code), tt.wantType, tt.wantCode)
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			if tt.wantRetry != "" && r.header.Get("X-Should-Retry") != "true" {
				t.Errorf("X-Should-Retry %q, want true", r.header.Get("X-Should-Retry"))
			}
			if tt.wantMsg != "" && e.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", e.Message, tt.wantMsg)
			}
		})
	}
}

// panicGenerator panics inside the handler's call.
type panicGenerator struct{ *fakeGenerator }

func (panicGenerator) Generate(context.Context, string, spec.Request) (spec.Result, error) {
	panic("boom")
}

func TestRecoveryAnswers500(t *testing.T) {
	ts := startServer(t, panicGenerator{newFakeGenerator()})
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x"}`)
	if r.status != 500 {
		t.Fatalf("status %d, want 500", r.status)
	}
	if e := envelope(t, r); e.Type != "server_error" || e.Message != messageServerError {
		t.Errorf("envelope %+v", e)
	}
	if r2 := do(t, ts.Client(), "GET", ts.URL+"/healthz", "", ""); r2.status != 200 {
		t.Errorf("server unhealthy after a panic: %d", r2.status)
	}
}

func TestRequestID(t *testing.T) {
	ts := startServer(t, newFakeGenerator())
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"kept", "trace-42.a_b:c", true},
		{"generated when absent", "", false},
		{"replaced when unsafe", "bad id\twith spaces", false},
		{"replaced when too long", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.in != "" {
				hdr = []string{"X-Request-Id", tt.in}
			}
			r := do(t, ts.Client(), "GET", ts.URL+"/v1/models", "", "", hdr...)
			got := r.header.Get("X-Request-Id")
			if tt.keep && got != tt.in {
				t.Errorf("X-Request-Id %q, want %q", got, tt.in)
			}
			if !tt.keep && (!strings.HasPrefix(got, "req_") || len(got) != 36) {
				t.Errorf("X-Request-Id %q, want a generated req_ id", got)
			}
		})
	}
}

func TestExtensionsReachThePipeline(t *testing.T) {
	gen := newFakeGenerator()
	ts := startServer(t, gen)
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"a fox","model":"sd-tiny","n":2,"size":"64x32",
		"negative_prompt":"blur","seed":41,"steps":7,"guidance_scale":3.5,"scheduler":"ddim"}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := gen.lastRequest()
	got.Progress = nil
	want := spec.Request{Prompt: "a fox", NegativePrompt: "blur", Width: 64, Height: 32, Steps: 7, Guidance: 3.5,
		HasGuidance: true, Scheduler: "ddim", Seed: 41, HasSeed: true, N: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sd request (-want +got):\n%s", diff)
	}
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Data[0].Seed != 41 || resp.Data[1].Seed != 42 {
		t.Errorf("seeds %d, %d, want 41, 42", resp.Data[0].Seed, resp.Data[1].Seed)
	}
	if resp.Size != "64x32" || resp.Quality != "medium" || resp.OutputFormat != "png" || resp.Background != "opaque" {
		t.Errorf("echo fields %+v", resp)
	}
}

func TestSeedDrawnWhenAbsent(t *testing.T) {
	gen := newFakeGenerator()
	ts := startServer(t, gen)
	seeds := map[uint64]bool{}
	for range 3 {
		r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","model":"sd-tiny"}`)
		var resp compat.ImagesResponse
		if err := json.Unmarshal(r.body, &resp); err != nil {
			t.Fatal(err)
		}
		s := resp.Data[0].Seed
		if s > compat.MaxSeed {
			t.Errorf("seed %d above 2^53-1", s)
		}
		seeds[s] = true
		if req := gen.lastRequest(); !req.HasSeed || req.Seed != s {
			t.Errorf("pipeline got seed %d (has %v), response says %d", req.Seed, req.HasSeed, s)
		}
	}
	if len(seeds) != 3 {
		t.Errorf("3 unseeded requests gave seeds %v", seeds)
	}
}

func trustLoopback(o *Options) { o.TrustedProxies = []string{"127.0.0.0/8", "::1"} }

func TestImageURLs(t *testing.T) {
	now := time.Unix(1800000000, 0)
	clock := func() time.Time { return now }
	tests := []struct {
		name    string
		opts    func(*Options)
		header  []string
		wantPfx string
	}{
		{"request host", nil, nil, "http://127.0.0.1:"},
		{"forwarded by a stranger is ignored", nil, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "img.example.com"}, "http://127.0.0.1:"},
		{"forwarded", trustLoopback, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "img.example.com"}, "https://img.example.com/v1/files/images/"},
		{"forwarded list takes the first", trustLoopback, []string{"X-Forwarded-Proto", "https, http", "X-Forwarded-Host", "a.example, b.example"}, "https://a.example/v1/files/images/"},
		{"forwarded host with a path is ignored", trustLoopback, []string{"X-Forwarded-Host", "evil.example/x?"}, "http://127.0.0.1:"},
		{"configured wins", func(o *Options) { o.PublicURL = "https://gen.example.org/api/" },
			[]string{"X-Forwarded-Host", "other.example"}, "https://gen.example.org/api/v1/files/images/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, newFakeGenerator(), func(o *Options) {
				o.Now = clock
				o.ImageTTL = time.Hour
				if tt.opts != nil {
					tt.opts(o)
				}
			})
			r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","response_format":"url","size":"256x256"}`, tt.header...)
			var resp compat.ImagesResponse
			if err := json.Unmarshal(r.body, &resp); err != nil || r.status != 200 {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			u := resp.Data[0].URL
			if !strings.HasPrefix(u, tt.wantPfx) {
				t.Fatalf("url %q, want prefix %q", u, tt.wantPfx)
			}
			name := u[strings.LastIndex(u, "/")+1:]
			local := ts.URL + imageFilesPath + name
			img := do(t, ts.Client(), "GET", local, "", "")
			if img.status != 200 || img.header.Get("Content-Type") != "image/png" {
				t.Fatalf("GET image: %d %s", img.status, img.header.Get("Content-Type"))
			}
			if cc := img.header.Get("Cache-Control"); cc != "private, max-age=3600" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
}

func TestImageURLExpires(t *testing.T) {
	var now atomicTime
	now.set(time.Unix(1800000000, 0))
	ts := startServer(t, newFakeGenerator(), func(o *Options) { o.Now = now.get; o.ImageTTL = time.Minute })
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","response_format":"url","size":"256x256"}`)
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if got := do(t, ts.Client(), "GET", resp.Data[0].URL, "", ""); got.status != 200 {
		t.Fatalf("fresh image: %d", got.status)
	}
	now.set(time.Unix(1800000000, 0).Add(time.Minute))
	got := do(t, ts.Client(), "GET", resp.Data[0].URL, "", "")
	if got.status != 404 {
		t.Fatalf("expired image: %d, want 404", got.status)
	}
	if e := envelope(t, got); deref(e.Code) != "file_not_found" {
		t.Errorf("code %s", deref(e.Code))
	}
}

func TestStreaming(t *testing.T) {
	ts := startServer(t, newFakeGenerator())
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","model":"gpt-image-1","n":2,"stream":true,"partial_images":2,"seed":5}`)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d type %q: %.200s", r.status, r.header.Get("Content-Type"), r.body)
	}
	events := strings.Split(strings.TrimSpace(string(r.body)), "\n\n")
	if len(events) != 4 {
		t.Fatalf("%d events, want 2 partial images and 2 completed:\n%s", len(events), r.body)
	}
	for i, ev := range events[2:] {
		name, data, ok := strings.Cut(ev, "\ndata: ")
		if !ok || name != "event: image_generation.completed" {
			t.Fatalf("event %d: %q", i, ev)
		}
		var e compat.ImageStreamEvent
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != compat.EventImageGenerationCompleted || e.B64JSON == "" || e.Seed != uint64(5+i) ||
			e.Size != "1024x1024" || e.Usage == nil || e.Usage.TotalTokens == 0 {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	gen := newFakeGenerator()
	gen.queueDepth = func() int { return 3 }
	ts := startServer(t, gen)
	c := ts.Client()
	if r := do(t, c, "GET", ts.URL+"/healthz", "", ""); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz %d %s", r.status, r.body)
	}
	if r := do(t, c, "GET", ts.URL+"/readyz", "", ""); r.status != 200 {
		t.Errorf("readyz %d %s", r.status, r.body)
	}
	gen.setReady(errors.New("model folder missing"))
	r := do(t, c, "GET", ts.URL+"/readyz", "", "")
	if r.status != 503 {
		t.Errorf("readyz when not ready: %d", r.status)
	}
	if e := envelope(t, r); !strings.Contains(e.Message, "model folder missing") {
		t.Errorf("readyz message %q", e.Message)
	}

	postJSON(t, c, ts.URL, `{"prompt":"x","model":"sd-tiny","n":2,"steps":5}`)
	postJSON(t, c, ts.URL, `{"prompt":""}`)
	for _, method := range []string{"FOO1", "FOO2"} { // any token is a method: they share one series
		do(t, c, method, ts.URL+"/v1/models", "", "")
	}
	m := do(t, c, "GET", ts.URL+"/metrics", "", "")
	if m.status != 200 {
		t.Fatalf("metrics %d", m.status)
	}
	text := string(m.body)
	for _, want := range []string{
		`sdgate_http_requests_total{method="POST",route="/v1/images/generations",status="200"} 1`,
		`sdgate_http_requests_total{method="POST",route="/v1/images/generations",status="400"} 1`,
		`sdgate_http_requests_total{method="GET",route="/readyz",status="503"} 1`,
		`sdgate_http_requests_total{method="other",route="unmatched",status="404"} 2`,
		`sdgate_http_request_duration_seconds_bucket{method="POST",route="/v1/images/generations",le="+Inf"} 2`,
		`sdgate_generation_duration_seconds_count{model="sd-tiny"} 1`,
		`sdgate_denoise_steps_total{model="sd-tiny"} 10`,
		`sdgate_denoise_steps_per_second{model="sd-tiny"}`,
		`sdgate_images_generated_total 2`,
		`sdgate_queue_depth 3`,
		`sdgate_stored_images 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"public url without scheme", Options{PublicURL: "example.com"}},
		{"bad trusted proxy", Options{TrustedProxies: []string{"not-an-ip"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(newFakeGenerator(), tt.opts); !errors.Is(err, ErrBadOptions) {
				if s != nil {
					s.Close()
				}
				t.Errorf("New: %v, want ErrBadOptions", err)
			}
		})
	}
	if _, err := New(nil, Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("New(nil): %v", err)
	}
}

func TestBodyLimitWithoutContentLength(t *testing.T) {
	ts := startServer(t, newFakeGenerator(), func(o *Options) { o.BodyLimit = 1024 })
	body := io.MultiReader(strings.NewReader(`{"prompt":"`), strings.NewReader(strings.Repeat("a", 4096)+`"}`))
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/images/generations", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if req.ContentLength != 0 {
		t.Fatalf("content length %d: the body must be chunked", req.ContentLength)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := rawResponse{status: resp.StatusCode, header: resp.Header, body: data}
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", r.status, data)
	}
	if e := envelope(t, r); deref(e.Code) != "request_too_large" {
		t.Errorf("code %s", deref(e.Code))
	}
}
