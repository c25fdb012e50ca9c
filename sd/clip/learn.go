package clip

import "strings"

// LearnMerges trains up to n BPE merges on corpus with CLIP's
// pre-tokenisation (normalized text, byte symbols, "</w>" on each word's
// last symbol): each round merges the most frequent adjacent pair, ties
// going to the smaller pair in byte order, so the result depends only on
// the corpus. A pair whose product an earlier merge already made is passed
// over, so products are distinct and VocabFromMerges' ids are dense. It
// stops early when no pair is left to merge. It makes small tokenizers for
// tests and synthetic models when CLIP's own merges are not at hand.
func LearnMerges(corpus string, n int) []Merge {
	counts := make(map[string]int)
	for _, w := range splitWords(nil, normalize(corpus)) {
		if w != bosToken && w != eosToken {
			counts[w]++
		}
	}
	type word struct {
		syms  []string
		count int
	}
	bt := newByteTables()
	words := make([]word, 0, len(counts))
	for w, c := range counts {
		words = append(words, word{wordSymbols(w, bt), c})
	}

	var merges []Merge
	made := make(map[string]bool)
	for len(merges) < n {
		freq := make(map[pair]int)
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				freq[pair{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		var best pair
		bestFreq := 0
		for p, f := range freq {
			if made[p.a+p.b] {
				continue
			}
			if f > bestFreq || (f == bestFreq && comparePairs(p, best) < 0) {
				best, bestFreq = p, f
			}
		}
		if bestFreq == 0 {
			break
		}
		made[best.a+best.b] = true
		ranks := map[pair]int{best: 0}
		for i := range words {
			words[i].syms = applyMerges(words[i].syms, ranks)
		}
		merges = append(merges, Merge{A: best.a, B: best.b})
	}
	return merges
}

func comparePairs(x, y pair) int {
	if c := strings.Compare(x.a, y.a); c != 0 {
		return c
	}
	return strings.Compare(x.b, y.b)
}
