package clip

import (
	"strings"
	"sync"
)

// pair is an adjacent symbol pair, the key of the merge ranks.
type pair struct{ a, b string }

// rankMerges maps each merge to its rank; a repeated merge keeps its last
// rank, as the reference's dict does.
func rankMerges(merges []Merge) map[pair]int {
	ranks := make(map[pair]int, len(merges))
	for i, m := range merges {
		ranks[pair{m.A, m.B}] = i
	}
	return ranks
}

// wordSymbols splits a word into its byte symbols, the last one carrying
// the end-of-word marker.
func wordSymbols(word string, bt *byteTables) []string {
	syms := make([]string, len(word))
	for i := 0; i < len(word); i++ {
		syms[i] = bt.enc[word[i]]
	}
	syms[len(syms)-1] += wordEnd
	return syms
}

// wordCache remembers the ids of recent words. It is bounded (a random
// entry goes when full, Go's map order being random) and safe for the
// concurrent requests that share one tokenizer.
type wordCache struct {
	mu    sync.RWMutex
	ids   map[string][]int
	limit int
}

func newWordCache(limit int) *wordCache {
	return &wordCache{ids: make(map[string][]int), limit: limit}
}

func (c *wordCache) get(word string) ([]int, bool) {
	c.mu.RLock()
	ids, ok := c.ids[word]
	c.mu.RUnlock()
	return ids, ok
}

// put stores ids, which callers must not modify afterwards.
func (c *wordCache) put(word string, ids []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[word]; !ok && len(c.ids) >= c.limit {
		for k := range c.ids {
			delete(c.ids, k)
			break
		}
	}
	// Clone so the cache never pins the caller's (possibly huge) text.
	c.ids[strings.Clone(word)] = ids
}
