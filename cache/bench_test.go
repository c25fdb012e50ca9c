package cache

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/latency"
)

// pngBytes is about what a 512x512 Stable Diffusion PNG weighs.
const pngBytes = 400 << 10

// hitsPerOp: each benchmark iteration times this many lookups, so that
// `make bench` (-benchtime 3x) still has enough samples for a p99.
const hitsPerOp = 1000

func pngEntry(seed uint64) Entry {
	img := make([]byte, pngBytes)
	if _, err := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(img); err != nil {
		panic(err) // ChaCha8.Read never fails
	}
	return Entry{Images: [][]byte{img}, Seeds: []uint64{seed}, ContentType: "image/png",
		RevisedPrompt: "a lighthouse at dusk", Created: time.Now(), Elapsed: 3 * time.Second}
}

func benchParams(seed uint64) Params {
	return Params{Engine: "bench", ModelID: "tiny", ModelDigest: "sha256:00", Operation: "generate",
		Prompt: "a lighthouse at dusk, dramatic clouds, 35mm photograph", Seed: seed, HasSeed: true,
		Steps: 20, Guidance: 7.5, HasGuidance: true, Width: 512, Height: 512, OutputWidth: 512,
		OutputHeight: 512, N: 1, OutputFormat: "png", OutputCompression: 100}
}

// benchHits times cache hits of one 512x512-PNG-sized entry on store.
func benchHits(b *testing.B, store Store, workers int) {
	ctx := context.Background()
	c, err := New(store, Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := benchParams(1)
	entry := pngEntry(1)
	compute := func(context.Context) (Entry, error) { return entry, nil }
	if _, _, err := c.Do(ctx, p, compute); err != nil {
		b.Fatal(err)
	}
	hit := func(ctx context.Context) error {
		e, o, err := c.Do(ctx, p, compute)
		if err == nil && (o != Hit || len(e.Images[0]) != pngBytes) {
			b.Fatalf("outcome %v, %d bytes: want a hit of the entry", o, len(e.Images[0]))
		}
		return err
	}
	var all []time.Duration
	var elapsed time.Duration
	for b.Loop() {
		s, err := latency.Measure(ctx, hitsPerOp, workers, hit)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, s.Samples...)
		elapsed += s.Elapsed
	}
	latency.Summarize(all, elapsed).Report(b)
}

// BenchmarkHit: one caller at a time; ns/op is per hitsPerOp hits.
func BenchmarkHit(b *testing.B) {
	m, err := NewMemory(1 << 30)
	if err != nil {
		b.Fatal(err)
	}
	benchHits(b, m, 1)
}

// BenchmarkHitParallel: requests/s with many callers on one hot key.
func BenchmarkHitParallel(b *testing.B) {
	m, err := NewMemory(1 << 30)
	if err != nil {
		b.Fatal(err)
	}
	benchHits(b, m, 4*runtime.GOMAXPROCS(0))
}

// BenchmarkHitRedis: the same on a local redis-server (loopback TCP).
func BenchmarkHitRedis(b *testing.B) {
	r, err := NewRedis(RedisOptions{Addr: startRedis(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	benchHits(b, r, 1)
}

// BenchmarkMiss is the cache's own cost on a miss (key, flight, store with
// evictions) around a compute that costs nothing; a real miss adds the
// whole pipeline on top.
func BenchmarkMiss(b *testing.B) {
	m, err := NewMemory(64 << 20)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(m, Options{})
	if err != nil {
		b.Fatal(err)
	}
	entry := pngEntry(1)
	compute := func(context.Context) (Entry, error) { return entry, nil }
	seed := uint64(0)
	for b.Loop() {
		seed++
		if _, o, err := c.Do(context.Background(), benchParams(seed), compute); err != nil || o != Miss {
			b.Fatalf("%v %v, want a miss", o, err)
		}
	}
}

func BenchmarkKeyOf(b *testing.B) {
	p := benchParams(1)
	for b.Loop() {
		KeyOf(p)
	}
}

// BenchmarkMemoryPerEntry fills a Memory store with 512x512-PNG-sized
// entries and reports the heap each one costs, its overhead beyond the
// image bytes, and what the byte bound counts for it (which should not be
// below the real cost).
func BenchmarkMemoryPerEntry(b *testing.B) {
	const entries = 64
	imgs := make([]Entry, entries)
	for i := range imgs {
		imgs[i] = pngEntry(uint64(i))
	}
	var perEntry float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := NewMemory(1 << 40)
		if err != nil {
			b.Fatal(err)
		}
		for i := range entries {
			// Copy the payload as a real miss would produce it fresh.
			e := imgs[i]
			e.Images = [][]byte{append([]byte(nil), imgs[i].Images[0]...)}
			e.Seeds = []uint64{uint64(i)}
			if err := m.Add(context.Background(), keyN(i), e); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / entries
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perEntry, "heap-B/entry")
	b.ReportMetric(perEntry-pngBytes, "overhead-B/entry")
	b.ReportMetric(float64(memorySize(imgs[0])), "counted-B/entry")
}
