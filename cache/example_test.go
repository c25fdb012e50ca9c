package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sdgate/sdgate/cache"
)

// A handler asks the cache with the request's pixel-determining parameters
// and generates only on a miss; X-Cache comes from the outcome.
func ExampleCache_Do() {
	store, err := cache.NewMemory(cache.DefaultMaxBytes())
	if err != nil {
		panic(err)
	}
	c, err := cache.New(store, cache.Options{})
	if err != nil {
		panic(err)
	}
	p := cache.Params{ModelID: "tiny", Prompt: "a lighthouse at dusk", Seed: 42, HasSeed: true,
		Width: 512, Height: 512, N: 1, OutputFormat: "png"}
	generate := func(ctx context.Context) (cache.Entry, error) {
		start := time.Now()
		png := []byte("\x89PNG...") // the pipeline's encoded image
		return cache.Entry{Images: [][]byte{png}, Seeds: []uint64{42}, ContentType: "image/png",
			Created: start, Elapsed: time.Since(start)}, nil
	}
	for range 2 {
		entry, outcome, err := c.Do(context.Background(), p, generate)
		if err != nil {
			panic(err)
		}
		fmt.Printf("X-Cache: %s, %d image, seed %d\n", outcome.Header(), len(entry.Images), entry.Seeds[0])
	}
	s := c.Stats()
	fmt.Printf("hits %d, misses %d, entries %d\n", s.Hits, s.Misses, s.Store.Entries)
	// Output:
	// X-Cache: MISS, 1 image, seed 42
	// X-Cache: HIT, 1 image, seed 42
	// hits 1, misses 1, entries 1
}
