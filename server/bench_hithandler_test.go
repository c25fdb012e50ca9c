package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/models"
)

// BenchmarkHitHandler is the server's own CPU and allocations per cache
// hit, without the network or a client: the part of BenchmarkHotPath's
// gap to the bare handler that the server controls, steady enough on a
// shared machine to compare before and after a change.
func BenchmarkHitHandler(b *testing.B) {
	for _, format := range []string{"url", "b64_json"} {
		b.Run(format, func(b *testing.B) {
			body := fmt.Sprintf(`{"model":"dall-e-2","prompt":"a lighthouse","size":"512x512","response_format":%q,"seed":1}`, format)
			mem, _ := cache.NewMemory(1 << 30)
			c, _ := cache.New(mem, cache.Options{})
			s, err := New(newFrozenBackend(), Options{Cache: c})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			h := s.Handler()
			serve := func() {
				req := httptest.NewRequest(http.MethodPost, "/v1/images/generations", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			serve() // the miss that fills the cache
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// frozenBackend is the fake with its model identity built once, as the
// registry builds it once per scan: the benchmarks then measure the
// server's lookups, not the fake's rebuilding of the identity per request.
type frozenBackend struct {
	*fakeGenerator
	ident models.Identity
}

func newFrozenBackend() frozenBackend {
	f := newFakeGenerator()
	return frozenBackend{fakeGenerator: f, ident: f.identity()}
}

func (f frozenBackend) Resolve(name string) (models.Info, bool) { return f.ident.Resolve(name) }
func (f frozenBackend) Aliases() map[string]string              { return f.ident.Aliases() }
func (f frozenBackend) Default() models.DefaultState            { return f.ident.Default() }
