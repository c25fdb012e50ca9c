package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/internal/latency"
)

// bareServer answers every POST with body, from memory, through a bare Gin
// engine: the floor a cache hit is measured against.
func bareServer(tb testing.TB, body []byte) *httptest.Server {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.POST("/v1/images/generations", func(c *gin.Context) {
		io.Copy(io.Discard, c.Request.Body)
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	})
	ts := httptest.NewServer(e)
	tb.Cleanup(ts.Close)
	return ts
}

// fetchBody posts body and returns the answer's bytes.
func fetchBody(tb testing.TB, client *http.Client, url, body string) []byte {
	req, _ := http.NewRequest("POST", url+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("status %d", resp.StatusCode)
	}
	return data
}

// BenchmarkHotPath: a 512x512 PNG cache hit (b64_json and url) at 64
// concurrent clients over loopback, against a bare Gin handler serving the
// same response bytes from memory in the same run; hit/bare is the ratio
// docs/performance.md gives.
func BenchmarkHotPath(b *testing.B) {
	const clients, perRun = 64, 2000
	for _, format := range []string{"b64_json", "url"} {
		body := fmt.Sprintf(`{"model":"dall-e-2","prompt":"a lighthouse","size":"512x512","response_format":%q,"seed":1}`, format)
		mem, _ := cache.NewMemory(1 << 30)
		c, _ := cache.New(mem, cache.Options{})
		ts := startServer(b, newFakeGenerator(), func(o *Options) { o.Cache = c })
		client := ts.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
		fetchBody(b, client, ts.URL, body) // the miss that fills the cache
		bare := bareServer(b, fetchBody(b, client, ts.URL, body))
		bareClient := bare.Client()
		bareClient.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
		var hit, floor latency.Summary
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				var err error
				if floor, err = latency.Measure(context.Background(), perRun, clients, func(ctx context.Context) error {
					return post(ctx, bareClient, bare.URL, "", body)
				}); err != nil {
					b.Fatal(err)
				}
				if hit, err = latency.Measure(context.Background(), perRun, clients, func(ctx context.Context) error {
					return post(ctx, client, ts.URL, "", body)
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(hit.PerSecond, "hit-req/s")
			b.ReportMetric(floor.PerSecond, "bare-req/s")
			b.ReportMetric(float64(hit.P50.Microseconds())/1000, "hit-p50-ms")
			b.ReportMetric(float64(floor.P50.Microseconds())/1000, "bare-p50-ms")
			b.ReportMetric(floor.PerSecond/hit.PerSecond, "cost-ratio")
		})
	}
}
