package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/internal/latency"
)

// post sends one generation and insists on a 200.
func post(ctx context.Context, client *http.Client, url, key, body string) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkAuthOverhead: p50/p99 of a request at 200 concurrent clients on
// loopback with auth + durable metering, with --no-auth (metering only, as
// serve does), and with neither; the fake generator answers at once, so the
// differences are auth and metering.
func BenchmarkAuthOverhead(b *testing.B) {
	store, err := auth.OpenDataDir(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	gate, _ := auth.New(store, auth.Options{})
	key, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "bench"})
	body := `{"model":"sd-tiny","prompt":"a cat","response_format":"b64_json"}`
	for _, c := range []struct {
		name string
		key  string
		opts func(*Options)
	}{
		{"auth+metering", key, func(o *Options) { o.Gate = gate }},
		{"no-auth(metering)", "", func(o *Options) { o.Gate, o.NoAuth = gate, true }},
		{"neither", "", func(o *Options) {}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ts := startServer(b, newFakeGenerator(), c.opts)
			client := ts.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 200
			var all latency.Summary
			for b.Loop() {
				s, err := latency.Measure(context.Background(), 1000, 200, func(ctx context.Context) error {
					return post(ctx, client, ts.URL, c.key, body)
				})
				if err != nil {
					b.Fatal(err)
				}
				all = s
			}
			all.Report(b)
		})
	}
}

// BenchmarkCacheHit: a 512x512 PNG answered from the cache against a miss
// on the real tiny model (256 -> 512 upscale of a 64x64 generation, 4
// steps), over loopback; and the heap each cached image costs.
func BenchmarkCacheHit(b *testing.B) {
	gen := realGenerator(b)
	mem, _ := cache.NewMemory(1 << 30)
	c, _ := cache.New(mem, cache.Options{})
	ts := startServer(b, gen, func(o *Options) { o.Cache = c })
	client := ts.Client()
	hitBody := `{"model":"dall-e-2","prompt":"a lighthouse","size":"512x512","response_format":"b64_json","seed":1}`
	if err := post(context.Background(), client, ts.URL, "", hitBody); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		var s latency.Summary
		for b.Loop() {
			var err error
			s, err = latency.Measure(context.Background(), 200, 4, func(ctx context.Context) error {
				return post(ctx, client, ts.URL, "", hitBody)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		s.Report(b)
	})
	b.Run("miss", func(b *testing.B) {
		seed := 100
		var s latency.Summary
		for b.Loop() {
			var err error
			s, err = latency.Measure(context.Background(), 10, 1, func(ctx context.Context) error {
				seed++
				return post(ctx, client, ts.URL, "", strings.Replace(hitBody, `"seed":1`, fmt.Sprintf(`"seed":%d`, seed), 1))
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		s.Report(b)
	})
	b.Run("memory-per-image", func(b *testing.B) {
		var before, after runtime.MemStats
		const images = 20
		var perImage float64
		for b.Loop() {
			runtime.GC()
			runtime.ReadMemStats(&before)
			entriesBefore := c.Stats().Store.Entries
			for i := range images {
				body := strings.Replace(hitBody, `"seed":1`, fmt.Sprintf(`"seed":%d`, 5000+i+int(entriesBefore)), 1)
				if err := post(context.Background(), client, ts.URL, "", body); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perImage = float64(after.HeapAlloc-before.HeapAlloc) / images
		}
		b.ReportMetric(perImage, "heap-B/image")
		b.ReportMetric(float64(c.Stats().Store.Bytes)/float64(c.Stats().Store.Entries), "cache-B/image")
	})
}
