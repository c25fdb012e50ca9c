package parallel

import (
	"sync"
	"testing"
)

// Every row is visited exactly once, whatever the split.
func TestRowsCoverEachRowOnce(t *testing.T) {
	for _, tc := range []struct{ n, workers, wantRanges int }{
		{0, 4, 1}, {1, 4, 1}, {7, 1, 1}, {7, 0, 1}, {7, 3, 3}, {3, 8, 3}, {1000, 16, 16},
	} {
		var mu sync.Mutex
		seen := make([]int, tc.n)
		ranges := 0
		Rows(tc.n, tc.workers, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			ranges++
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		if ranges != tc.wantRanges {
			t.Errorf("Rows(%d, %d): %d ranges, want %d", tc.n, tc.workers, ranges, tc.wantRanges)
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("Rows(%d, %d): row %d visited %d times", tc.n, tc.workers, i, c)
			}
		}
	}
}
