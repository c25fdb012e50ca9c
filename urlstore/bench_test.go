package urlstore

import (
	"context"
	"testing"
)

// BenchmarkMemoryPutAll: one url-format answer's store at steady state,
// the byte budget full so that every put evicts the oldest image (what a
// stream of cache hits does to the store).
func BenchmarkMemoryPutAll(b *testing.B) {
	image := make([][]byte, 1)
	image[0] = make([]byte, 150<<10)
	s := NewMemory(DefaultTTL, 6000*150<<10, nil)
	defer s.Close()
	ctx := context.Background()
	for range 7000 {
		s.PutAll(ctx, image, "image/png", "png")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.PutAll(ctx, image, "image/png", "png"); err != nil {
			b.Fatal(err)
		}
	}
}
