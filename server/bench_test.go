package server

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkRequestOverhead measures what the HTTP layer adds around the
// pipeline: decode, validate, translate, resize, encode, respond, over
// loopback, minus the fake generator's own time.
func BenchmarkRequestOverhead(b *testing.B) {
	cases := []struct{ name, body string }{
		{"native_64px_b64", `{"prompt":"bench","model":"sd-tiny","size":"64x64","seed":1}`},
		{"native_64px_url", `{"prompt":"bench","model":"sd-tiny","size":"64x64","seed":1,"response_format":"url"}`},
		{"resize_to_512px_png", `{"prompt":"bench","model":"dall-e-2","size":"512x512","response_format":"b64_json","seed":1}`},
		{"resize_to_1024px_png", `{"prompt":"bench","model":"dall-e-2","size":"1024x1024","response_format":"b64_json","seed":1}`},
		{"resize_to_1024px_jpeg", `{"prompt":"bench","model":"gpt-image-1","size":"1024x1024","output_format":"jpeg","output_compression":90,"seed":1}`},
		{"resize_to_1024px_webp", `{"prompt":"bench","model":"gpt-image-1","size":"1024x1024","output_format":"webp","output_compression":80,"seed":1}`},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			gen := newFakeGenerator()
			ts := startServer(b, gen)
			client := ts.Client()
			post := func() {
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/images/generations", stringsReader(bc.body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				drain(resp)
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			post() // warm up: connection, encoders
			gen.genNanos.Store(0)
			var total time.Duration
			n := 0
			for b.Loop() {
				began := time.Now()
				post()
				total += time.Since(began)
				n++
			}
			b.ReportMetric(float64(total.Nanoseconds()-gen.genNanos.Load())/float64(n), "overhead-ns/op")
		})
	}
}

// BenchmarkBurst100 fires 100 concurrent requests at a queue of size N with
// 20 ms jobs and reports how many were accepted or refused, and latencies.
func BenchmarkBurst100(b *testing.B) {
	for _, size := range []int{4, 16, 64, 128} {
		b.Run(fmt.Sprintf("queue=%d", size), func(b *testing.B) {
			ts, _, _ := queuedServer(b, size, 20*time.Millisecond)
			client := ts.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 100
			var accepted, refused, other int
			var okLat, refusedLat []time.Duration
			for b.Loop() {
				var mu sync.Mutex
				var wg sync.WaitGroup
				for range 100 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/images/generations",
							stringsReader(`{"prompt":"burst","model":"sd-tiny","size":"64x64"}`))
						req.Header.Set("Content-Type", "application/json")
						began := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						drain(resp)
						took := time.Since(began)
						mu.Lock()
						defer mu.Unlock()
						switch resp.StatusCode {
						case http.StatusOK:
							accepted++
							okLat = append(okLat, took)
						case http.StatusTooManyRequests:
							refused++
							refusedLat = append(refusedLat, took)
						default:
							other++
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(accepted)/float64(b.N), "accepted/op")
			b.ReportMetric(float64(refused)/float64(b.N), "429/op")
			b.ReportMetric(float64(other)/float64(b.N), "other/op")
			b.ReportMetric(percentile(okLat, 50).Seconds()*1000, "ok-p50-ms")
			b.ReportMetric(percentile(okLat, 99).Seconds()*1000, "ok-p99-ms")
			b.ReportMetric(percentile(refusedLat, 50).Seconds()*1000, "429-p50-ms")
			b.ReportMetric(percentile(refusedLat, 99).Seconds()*1000, "429-p99-ms")
		})
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
