// Package parallel splits a range of rows among goroutines, for the CPU
// kernels (image resize, LoRA merge) whose rows are independent.
package parallel

import "sync"

// Rows runs f on contiguous ranges [lo, hi) that cover [0, n) in order,
// one goroutine per range, with at most workers ranges (and at most n).
// With workers <= 1 (or n <= 1) it runs f(0, n) on the caller's goroutine.
func Rows(n, workers int, f func(lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := n*k/workers, n*(k+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
