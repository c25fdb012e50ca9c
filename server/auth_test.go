package server

import (
	"github.com/sdgate/sdgate/internal/authtest"

	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
)

// authServer runs the fake generator behind a real Gate on a temp SQLite
// store and returns the server and an admin key.
func authServer(t *testing.T, extra ...func(*Options)) (*httptest.Server, *auth.Gate, string) {
	t.Helper()
	gate, _ := authtest.Gate(t, auth.Options{})
	admin, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "admin", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]func(*Options){func(o *Options) { o.Gate = gate }}, extra...)
	return startServer(t, newFakeGenerator(), opts...), gate, admin
}

type apiAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, ts *httptest.Server, method, path, key, body string, headers ...string) apiAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m)
	return apiAnswer{resp.StatusCode, resp.Header, m}
}

func errorOf(a apiAnswer) (typ, code, message string) {
	e, _ := a.body["error"].(map[string]any)
	typ, _ = e["type"].(string)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	return
}

const genBody = `{"model":"sd-tiny","prompt":"a cat","n":2,"seed":1}`

func TestAuthErrors(t *testing.T) {
	ts, gate, admin := authServer(t)
	ctx := context.Background()
	limited, _, _ := gate.CreateKey(ctx, auth.KeySpec{Name: "limited", Limits: auth.Limits{RequestsPerMinute: 1, ImagesPerMinute: 100}})
	quota, _, _ := gate.CreateKey(ctx, auth.KeySpec{Name: "quota", Limits: auth.Limits{ImageQuota: 3}})
	models, _, _ := gate.CreateKey(ctx, auth.KeySpec{Name: "models", Models: []string{"sd-turbo"}})
	revoked, rk, _ := gate.CreateKey(ctx, auth.KeySpec{Name: "revoked"})
	gate.RevokeKey(ctx, rk.ID)

	wrong := "sk-" + strings.Repeat("x", 43)
	cases := []struct {
		name       string
		key        string
		header     []string
		status     int
		typ, code  string
		inMessage  string
		wantHeader string
	}{
		{"missing key", "", nil, 401, "invalid_request_error", "invalid_api_key", "didn't provide an API key", ""},
		{"wrong key, masked", wrong, nil, 401, "invalid_request_error", "invalid_api_key", "sk-xx***xxx", ""},
		{"revoked", revoked, nil, 401, "invalid_request_error", "invalid_api_key", "revoked", ""},
		{"azure api-key header", "", []string{"api-key", admin}, 200, "", "", "", "X-Cache"},
		{"model not allowed", models, nil, 404, "invalid_request_error", "model_not_found", "sd-tiny", ""},
		{"quota", quota, nil, 200, "", "", "", ""},
		{"quota exhausted", quota, nil, 429, "insufficient_quota", "insufficient_quota", "", "X-Should-Retry"},
		{"rate limit first", limited, nil, 200, "", "", "", "x-ratelimit-remaining-requests"},
		{"rate limited", limited, nil, 429, "requests", "rate_limit_exceeded", "", "Retry-After"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := call(t, ts, "POST", "/v1/images/generations", c.key, genBody, c.header...)
			typ, code, msg := errorOf(a)
			if a.status != c.status || typ != c.typ || code != c.code || !strings.Contains(msg, c.inMessage) {
				t.Errorf("got %d %q %q %q, want %d %q %q containing %q", a.status, typ, code, msg, c.status, c.typ, c.code, c.inMessage)
			}
			if c.wantHeader != "" && a.header.Get(c.wantHeader) == "" {
				t.Errorf("no %s header: %v", c.wantHeader, a.header)
			}
			if strings.Contains(msg, wrong) {
				t.Error("the message shows the whole key")
			}
		})
	}
	// Rate-limit headers ride on every response of a limited key, errors too.
	a := call(t, ts, "POST", "/v1/images/generations", limited, `{"prompt": 1}`)
	if a.status != 400 || a.header.Get("x-ratelimit-limit-requests") != "1" {
		t.Errorf("400 of a limited key: status %d, headers %v", a.status, a.header)
	}
}

func TestUsageAndAdminEndpoints(t *testing.T) {
	ts, _, admin := authServer(t)
	created := call(t, ts, "POST", "/v1/admin/keys", admin, `{"name":"client","limits":{"image_quota":10}}`)
	secret, _ := created.body["value"].(string)
	id, _ := created.body["id"].(string)
	if created.status != 201 || !strings.HasPrefix(secret, "sk-") || id == "" {
		t.Fatalf("create: %d %v", created.status, created.body)
	}
	if a := call(t, ts, "GET", "/v1/admin/keys", secret, ""); a.status != 403 {
		t.Errorf("non-admin listed keys: %d", a.status)
	}
	if l, _ := created.body["limits"].(map[string]any); l["image_quota"] != 10.0 {
		t.Errorf("limits on the wire: %v", created.body["limits"])
	}
	list := call(t, ts, "GET", "/v1/admin/keys", admin, "")
	raw, _ := json.Marshal(list.body)
	if list.status != 200 || strings.Contains(string(raw), secret) || !strings.Contains(string(raw), id) {
		t.Errorf("list: %d %s", list.status, raw)
	}
	if a := call(t, ts, "POST", "/v1/images/generations", secret, genBody); a.status != 200 {
		t.Fatalf("generate: %d %v", a.status, a.body)
	}
	usage := call(t, ts, "GET", "/v1/usage", secret, "")
	data, _ := usage.body["data"].([]any)
	if usage.status != 200 || len(data) != 1 {
		t.Fatalf("usage: %d %v", usage.status, usage.body)
	}
	day := data[0].(map[string]any)
	if day["images"].(float64) != 2 || day["requests"].(float64) != 1 || day["key_id"] != id {
		t.Errorf("usage day %v", day)
	}
	if a := call(t, ts, "GET", "/v1/usage?key_id="+id, admin, ""); a.status != 200 {
		t.Errorf("admin reading another key's usage: %d", a.status)
	}
	if a := call(t, ts, "DELETE", "/v1/admin/keys/"+id, admin, ""); a.status != 200 {
		t.Errorf("revoke: %d %v", a.status, a.body)
	}
	if a := call(t, ts, "POST", "/v1/images/generations", secret, genBody); a.status != 401 {
		t.Errorf("revoked key still works: %d", a.status)
	}
}

// Two requests racing on the last images of a quota: exactly one passes.
func TestQuotaRaceOverHTTP(t *testing.T) {
	ts, gate, _ := authServer(t)
	key, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "q", Limits: auth.Limits{ImageQuota: 2}})
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = call(t, ts, "POST", "/v1/images/generations", key, genBody).status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == 200 {
			ok++
		} else if s != 429 {
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d requests of 2 images passed a 2-image quota, want 1 (%v)", ok, statuses)
	}
}

func TestCacheHitsAreMeteredAsCached(t *testing.T) {
	mem, _ := cache.NewMemory(64 << 20)
	c, _ := cache.New(mem, cache.Options{})
	ts, _, admin := authServer(t, func(o *Options) { o.Cache = c })
	first := call(t, ts, "POST", "/v1/images/generations", admin, genBody)
	// user does not change pixels: same entry.
	second := call(t, ts, "POST", "/v1/images/generations", admin, strings.Replace(genBody, `"a cat"`, `"a cat", "user": "someone"`, 1))
	unseeded := call(t, ts, "POST", "/v1/images/generations", admin, `{"model":"sd-tiny","prompt":"a cat"}`)
	if first.header.Get("X-Cache") != "MISS" || second.header.Get("X-Cache") != "HIT" || unseeded.header.Get("X-Cache") != "MISS" {
		t.Errorf("X-Cache: %q, %q, %q", first.header.Get("X-Cache"), second.header.Get("X-Cache"), unseeded.header.Get("X-Cache"))
	}
	a, _ := json.Marshal(first.body["data"])
	b, _ := json.Marshal(second.body["data"])
	if string(a) != string(b) {
		t.Error("a hit answered different images")
	}
	usage := call(t, ts, "GET", "/v1/usage", admin, "")
	day := usage.body["data"].([]any)[0].(map[string]any)
	if day["requests"].(float64) != 3 || day["cached"].(float64) != 1 || day["images"].(float64) != 5 {
		t.Errorf("usage %v", day)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+admin) // metrics are an admin's when keys are on
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"sdgate_cache_hits_total 1", "sdgate_cache_misses_total 1", "sdgate_cache_bypassed_total 1", "sdgate_cache_entries 1"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The access log line of an image request names the key, model, cache
// outcome, queue wait and generation time.
func TestAccessLogDescribesTheJob(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ts, _, admin := authServer(t, func(o *Options) { o.Logger = logger })
	call(t, ts, "POST", "/v1/images/generations", admin, genBody)
	var line map[string]any
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, `"route":"/v1/images/generations"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	for _, k := range []string{"request_id", "key_id", "model", "status", "cache", "queue_wait", "generation"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, line)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The dashboard's views: usage by model and the newest requests, under the
// same access rules as /v1/usage, with bad parameters named.
func TestUsageByModelAndRecentRequests(t *testing.T) {
	ts, gate, admin := authServer(t)
	user, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "u"})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{user, admin} {
		if a := call(t, ts, "POST", "/v1/images/generations", key, genBody); a.status != 200 {
			t.Fatalf("generate: %d %v", a.status, a.body)
		}
	}
	by := call(t, ts, "GET", "/v1/usage?group_by=model", user, "")
	rows, _ := by.body["data"].([]any)
	if by.status != 200 || len(rows) != 1 || rows[0].(map[string]any)["model"] == "" || rows[0].(map[string]any)["model"] == nil {
		t.Fatalf("usage by model: %d %v", by.status, by.body)
	}
	mine := call(t, ts, "GET", "/v1/usage/requests", user, "")
	reqs, _ := mine.body["data"].([]any)
	if mine.status != 200 || len(reqs) != 1 {
		t.Fatalf("own requests: %d %v", mine.status, mine.body)
	}
	r := reqs[0].(map[string]any)
	if size, _ := r["generated_size"].(string); !regexp.MustCompile(`^[1-9][0-9]*x[1-9][0-9]*$`).MatchString(size) {
		t.Errorf("request row generated_size %q, want WxH", r["generated_size"])
	}
	if r["object"] != "usage.request" || r["status"] != 200.0 || r["cached"] != false || r["images"] != 2.0 || r["id"] == "" {
		t.Errorf("request row %v", r)
	}
	if all := call(t, ts, "GET", "/v1/usage/requests?key_id=*&limit=1", admin, ""); all.status != 200 || len(all.body["data"].([]any)) != 1 {
		t.Errorf("admin, all keys, limit 1: %d %v", all.status, all.body)
	}
	if a := call(t, ts, "GET", "/v1/usage/requests?key_id=*", user, ""); a.status != 403 {
		t.Errorf("a plain key read every key's requests: %d", a.status)
	}
	for q, param := range map[string]string{"/v1/usage/requests?limit=0": "limit", "/v1/usage/requests?limit=501": "limit", "/v1/usage?group_by=size": "group_by"} {
		a := call(t, ts, "GET", q, admin, "")
		if e, _ := a.body["error"].(map[string]any); a.status != 400 || e["param"] != param {
			t.Errorf("%s: %d %v, want 400 param %s", q, a.status, a.body, param)
		}
	}
}
