package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
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
func fetchBody(tb testing.TB, client *http.Client, url, body, key string) []byte {
	req, _ := http.NewRequest("POST", url+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
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
// docs/performance.md gives. The metered run adds the API key check and the
// durable usage record of every hit (auth's group commit: records of
// concurrent hits share one fsynced transaction, and each answer waits for
// its own record's commit).
func BenchmarkHotPath(b *testing.B) {
	const clients, perRun = 64, 2000
	store, err := auth.OpenDataDir(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	gate, _ := auth.New(store, auth.Options{})
	key, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "bench"})
	for _, mode := range []struct{ name, format string }{{"b64_json", "b64_json"}, {"url", "url"}, {"b64_json+auth+metering", "b64_json"}} {
		format := mode.format
		body := fmt.Sprintf(`{"model":"dall-e-2","prompt":"a lighthouse","size":"512x512","response_format":%q,"seed":1}`, format)
		mem, _ := cache.NewMemory(1 << 30)
		c, _ := cache.New(mem, cache.Options{})
		metered := mode.name != format
		ts := startServer(b, newFrozenBackend(), func(o *Options) {
			o.Cache = c
			if metered {
				o.Gate = gate
			}
		})
		hitKey := ""
		if metered {
			hitKey = key
		}
		client := ts.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
		fetchBody(b, client, ts.URL, body, hitKey) // the miss that fills the cache
		bare := bareServer(b, fetchBody(b, client, ts.URL, body, hitKey))
		bareClient := bare.Client()
		bareClient.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
		var hit, floor latency.Summary
		b.Run(mode.name, func(b *testing.B) {
			// Sum every iteration's wall time, the order alternating, so that
			// one noisy moment on a shared machine weighs on both sides.
			// The process's CPU time per side is summed too: it is less
			// sensitive than wall time to the machine's other tenants.
			var hitWall, floorWall, hitCPU, floorCPU time.Duration
			i := 0
			for b.Loop() {
				var err error
				measureBare := func() {
					cpu := processCPU()
					if floor, err = latency.Measure(context.Background(), perRun, clients, func(ctx context.Context) error {
						return post(ctx, bareClient, bare.URL, "", body)
					}); err != nil {
						b.Fatal(err)
					}
					floorCPU += processCPU() - cpu
					floorWall += floor.Elapsed
				}
				measureHit := func() {
					cpu := processCPU()
					if hit, err = latency.Measure(context.Background(), perRun, clients, func(ctx context.Context) error {
						return post(ctx, client, ts.URL, hitKey, body)
					}); err != nil {
						b.Fatal(err)
					}
					hitCPU += processCPU() - cpu
					hitWall += hit.Elapsed
				}
				if i%2 == 0 {
					measureBare()
					measureHit()
				} else {
					measureHit()
					measureBare()
				}
				i++
			}
			hit.PerSecond = float64(i*perRun) / hitWall.Seconds()
			floor.PerSecond = float64(i*perRun) / floorWall.Seconds()
			b.ReportMetric(hit.PerSecond, "hit-req/s")
			b.ReportMetric(floor.PerSecond, "bare-req/s")
			b.ReportMetric(float64(hit.P50.Microseconds())/1000, "hit-p50-ms")
			b.ReportMetric(float64(floor.P50.Microseconds())/1000, "bare-p50-ms")
			b.ReportMetric(floor.PerSecond/hit.PerSecond, "cost-ratio")
			b.ReportMetric(float64(hitCPU)/float64(floorCPU), "cpu-ratio")
		})
	}
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
