package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/internal/testsvc"
	"github.com/sdgate/sdgate/urlstore"
)

// Tests of the state gateways share through Redis: URL images here.

func newRedisImageStore(t *testing.T, addr string) *urlstore.Redis {
	t.Helper()
	r, err := urlstore.NewRedis(urlstore.RedisOptions{Addr: addr, TTL: time.Hour, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A URL minted by one gateway is served by another that shares the store.
func TestImageURLServedByAnotherGateway(t *testing.T) {
	addr := testsvc.StartRedis(t)
	a := startServer(t, newFakeGenerator(), func(o *Options) { o.ImageStore = newRedisImageStore(t, addr) })
	b := startServer(t, newFakeGenerator(), func(o *Options) { o.ImageStore = newRedisImageStore(t, addr) })
	r := postJSON(t, a.Client(), a.URL, `{"prompt":"x","response_format":"url","size":"256x256","n":2}`)
	var resp compat.ImagesResponse
	if err := json.Unmarshal(r.body, &resp); err != nil || r.status != 200 || len(resp.Data) != 2 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	for i, d := range resp.Data {
		name := d.URL[strings.LastIndex(d.URL, "/")+1:]
		img := do(t, b.Client(), "GET", b.URL+imageFilesPath+name, "", "")
		if img.status != 200 || img.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(string(img.body), "\x89PNG") {
			t.Fatalf("image %d through the other gateway: %d %q", i, img.status, img.header.Get("Content-Type"))
		}
		if cc := img.header.Get("Cache-Control"); cc != "private, max-age=3599" && cc != "private, max-age=3600" {
			t.Errorf("Cache-Control %q", cc)
		}
	}
	if got := do(t, b.Client(), "GET", b.URL+imageFilesPath+"0123456789abcdef0123456789abcdef.png", "", ""); got.status != 404 {
		t.Errorf("unknown image: %d, want 404", got.status)
	}
}

// A store that cannot answer is a 503 the client may retry, never a URL
// that leads nowhere; base64 responses do not need it.
func TestImageStoreDownIs503(t *testing.T) {
	store := newRedisImageStore(t, "127.0.0.1:1")
	gen := newFakeGenerator()
	ts := startServer(t, gen, func(o *Options) { o.ImageStore = store })
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","response_format":"url","size":"256x256"}`)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("url response with the store down: %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if e := envelope(t, r); deref(e.Code) != "image_store_unavailable" {
		t.Errorf("code %q", deref(e.Code))
	}
	if got := do(t, ts.Client(), "GET", ts.URL+imageFilesPath+"0123456789abcdef0123456789abcdef.png", "", ""); got.status != 503 {
		t.Errorf("GET with the store down: %d, want 503", got.status)
	}
	if r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","response_format":"b64_json","size":"256x256"}`); r.status != 200 {
		t.Errorf("b64 response with the store down: %d", r.status)
	}
}

// gatewayPair is two servers over one key store whose rate limits live in
// the Redis at addr, each with its own limiter; it returns the servers and
// a key limited to rpm requests per minute.
func gatewayPair(t *testing.T, addr string, rpm int, failClosed bool) (a, b *httptest.Server, secret string) {
	t.Helper()
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	secret, _, err = auth.CreateKey(context.Background(), store, auth.KeySpec{Name: "k", Limits: auth.Limits{RequestsPerMinute: rpm}})
	if err != nil {
		t.Fatal(err)
	}
	var servers [2]*httptest.Server
	for i := range servers {
		l, err := auth.NewRedisRateLimiter(auth.RedisLimiterOptions{Addr: addr, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		gate, err := auth.New(store, auth.Options{RateLimiter: l, RateLimitFailClosed: failClosed})
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = startServer(t, newFakeGenerator(), func(o *Options) { o.Gate = gate })
	}
	return servers[0], servers[1], secret
}

// Requests through two gateways draw on one allowance, and each answer's
// x-ratelimit-* headers count the other gateway's requests too.
func TestRateLimitSharedByGateways(t *testing.T) {
	addr := testsvc.StartRedis(t)
	a, b, key := gatewayPair(t, addr, 4, false)
	body := `{"prompt":"x","size":"256x256","response_format":"b64_json"}`
	for i, ts := range []*httptest.Server{a, b, a, b} {
		r := call(t, ts, "POST", "/v1/images/generations", key, body)
		if r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
		if got, want := r.header.Get(auth.HeaderRemainingRequests), strconv.Itoa(3-i); got != want {
			t.Errorf("request %d: remaining %q, want %q", i+1, got, want)
		}
	}
	r := call(t, b, "POST", "/v1/images/generations", key, body)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get(auth.HeaderRemainingRequests) != "0" {
		t.Errorf("5th request: %d, Retry-After %q, remaining %q; want 429 with both", r.status,
			r.header.Get("Retry-After"), r.header.Get(auth.HeaderRemainingRequests))
	}
}

// Failing closed, a gateway whose Redis is down admits nothing: 503 with
// a code that names the cause, and Retry-After.
func TestRateLimiterDownFailsClosed(t *testing.T) {
	a, _, key := gatewayPair(t, "127.0.0.1:1", 4, true)
	r := call(t, a, "POST", "/v1/images/generations", key, `{"prompt":"x","size":"256x256","response_format":"b64_json"}`)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if e, _ := r.body["error"].(map[string]any); e == nil || e["code"] != "rate_limiter_unavailable" {
		t.Errorf("body %v", r.body)
	}
}

// newRedisCache is a result cache on its own connection to the Redis at
// addr: one gateway's.
func newRedisCache(t *testing.T, addr string) *cache.Cache {
	t.Helper()
	r, err := cache.NewRedis(cache.RedisOptions{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := cache.New(r, cache.Options{RemotePoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Identical requests in flight on two gateways that share Redis run one
// job: the second waits for the first's result and is answered from it.
func TestCoalescingAcrossGateways(t *testing.T) {
	addr := testsvc.StartRedis(t)
	genA, genB := newFakeGenerator(), newFakeGenerator()
	genA.setDelay(400 * time.Millisecond)
	genB.setDelay(400 * time.Millisecond)
	a := startServer(t, genA, func(o *Options) { o.Cache = newRedisCache(t, addr) })
	b := startServer(t, genB, func(o *Options) { o.Cache = newRedisCache(t, addr) })
	body := `{"prompt":"one job","size":"256x256","seed":42,"response_format":"b64_json"}`
	answers := make(chan rawResponse, 2)
	go func() { answers <- postJSON(t, a.Client(), a.URL, body) }()
	time.Sleep(100 * time.Millisecond) // a leads
	go func() { answers <- postJSON(t, b.Client(), b.URL, body) }()
	var got []rawResponse
	for range 2 {
		got = append(got, <-answers)
	}
	if calls := genA.calls.Load() + genB.calls.Load(); calls != 1 {
		t.Errorf("%d generations across the gateways, want 1", calls)
	}
	var caches []string
	var images []string
	for _, r := range got {
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var resp compat.ImagesResponse
		if err := json.Unmarshal(r.body, &resp); err != nil {
			t.Fatal(err)
		}
		caches = append(caches, r.header.Get("X-Cache"))
		images = append(images, resp.Data[0].B64JSON)
	}
	if images[0] != images[1] || images[0] == "" {
		t.Error("the gateways answered different images")
	}
	if !(caches[0] == "MISS" && caches[1] == "HIT" || caches[0] == "HIT" && caches[1] == "MISS") {
		t.Errorf("X-Cache %v, want one MISS and one HIT", caches)
	}
	metrics := string(do(t, a.Client(), "GET", a.URL+"/metrics", "", "").body) +
		string(do(t, b.Client(), "GET", b.URL+"/metrics", "", "").body)
	if n := strings.Count(metrics, "\nsdgate_cache_remote_coalesced_total 1\n"); n != 1 {
		t.Errorf("%d gateways report one remote-coalesced computation, want 1", n)
	}
}
