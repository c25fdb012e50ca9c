package server

import (
	"strings"
	"testing"

	"github.com/sdgate/sdgate/models"
)

func TestBatchSizeHistogram(t *testing.T) {
	gen := newFakeGenerator()
	gen.stats = models.Stats{Batches: models.BatchSizes{3, 0, 0, 2}} // three alone, two of four
	ts := startServer(t, gen)
	m := do(t, ts.Client(), "GET", ts.URL+"/metrics", "", "")
	for _, want := range []string{
		`sdgate_batch_size_bucket{le="1"} 3`, `sdgate_batch_size_bucket{le="3"} 3`, `sdgate_batch_size_bucket{le="4"} 5`,
		`sdgate_batch_size_bucket{le="+Inf"} 5`, `sdgate_batch_size_sum 11`, `sdgate_batch_size_count 5`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
