package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sdgate/sdgate/models"
)

// batchSizeBuckets are the upper bounds of sdgate_batch_size.
var batchSizeBuckets = []float64{1, 2, 3, 4, 6, 8, 12, 16}

// batchSizeCollector exports the registry's batch counts as a histogram of
// requests per batched run, read at scrape time.
type batchSizeCollector struct {
	desc  *prometheus.Desc
	stats func() models.Stats
}

func newBatchSizeCollector(stats func() models.Stats) *batchSizeCollector {
	return &batchSizeCollector{stats: stats, desc: prometheus.NewDesc("sdgate_batch_size",
		"Requests per batched GPU run (each shares one UNet call per step).", nil, nil)}
}

func (c *batchSizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *batchSizeCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.stats().Batches
	buckets := make(map[float64]uint64, len(batchSizeBuckets))
	var total uint64
	var sum float64
	for i, n := range counts {
		size := float64(i + 1)
		total += n
		sum += size * float64(n)
		for _, b := range batchSizeBuckets {
			if size <= b {
				buckets[b] += n
			}
		}
	}
	ch <- prometheus.MustNewConstHistogram(c.desc, total, sum, buckets)
}
