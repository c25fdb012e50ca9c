package clip

// applyMerges runs BPE on one word's symbols as the reference does: find
// the lowest-ranked adjacent pair, merge every occurrence of it left to
// right (non-overlapping), repeat until no adjacent pair has a rank.
//
// The reference rescans the word for every merge, quadratic in its length;
// one long "word" (thousands of letters without a space) would cost
// seconds. Here a heap of candidate pairs makes it O(n log n): each round
// pops all candidates of the lowest rank in position order, skips those a
// merge made stale, and only then adds the pairs around the new symbols, so
// rounds are exactly the reference's iterations.
func applyMerges(syms []string, ranks map[pair]int) []string {
	n := len(syms)
	if n < 2 {
		return syms
	}
	next := make([]int, n) // next live symbol; n past the end
	prev := make([]int, n) // previous live symbol; -1 before the start
	for i := range n {
		next[i], prev[i] = i+1, i-1
	}
	var h candidates
	push := func(i int) {
		if i < 0 || next[i] >= n {
			return
		}
		left, right := syms[i], syms[next[i]]
		if r, ok := ranks[pair{left, right}]; ok {
			h.push(candidate{rank: r, pos: i, left: left, right: right})
		}
	}
	for i := range n - 1 {
		push(i)
	}
	var merged []int
	for len(h) > 0 {
		rank := h[0].rank
		merged = merged[:0]
		for len(h) > 0 && h[0].rank == rank {
			c := h.pop()
			j := next[c.pos]
			// Stale: its left symbol was merged into something or away,
			// or its right neighbour changed.
			if syms[c.pos] != c.left || j >= n || syms[j] != c.right {
				continue
			}
			syms[c.pos] = c.left + c.right
			syms[j] = "" // dead; live symbols are never empty
			next[c.pos] = next[j]
			if next[j] < n {
				prev[next[j]] = c.pos
			}
			merged = append(merged, c.pos)
		}
		for _, i := range merged {
			push(prev[i])
			push(i)
		}
	}
	out := syms[:0] // in place: live symbols only move left
	for i := 0; i < n; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}

// candidate is an adjacent pair that had a rank when it was pushed.
type candidate struct {
	rank, pos   int
	left, right string
}

// candidates is a binary min-heap by (rank, pos): typed, so pushes do not
// box values the way container/heap would.
type candidates []candidate

func (h candidates) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].pos < h[j].pos)
}

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *candidates) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s.less(l, smallest) {
			smallest = l
		}
		if r < len(s) && s.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			break
		}
		s[i], s[smallest] = s[smallest], s[i]
		i = smallest
	}
	*h = s
	return top
}
