package clip

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// rescanMerges is the reference's quadratic loop, kept as the oracle for
// the heap-based applyMerges.
func rescanMerges(syms []string, ranks map[pair]int) []string {
	syms = slices.Clone(syms)
	for len(syms) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := ranks[pair{syms[i], syms[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := syms[best], syms[best+1]
		var out []string
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				out = append(out, first+second)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	return syms
}

func TestApplyMergesTable(t *testing.T) {
	ranks := rankMerges([]Merge{{"a", "a"}, {"b", "c</w>"}, {"aa", "a"}, {"x", "y</w>"}, {"y", "x"}})
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"single", []string{"a</w>"}, []string{"a</w>"}},
		{"left to right, no overlap", []string{"a", "a", "a</w>"}, []string{"aa", "a</w>"}},
		{"all occurrences in one round", []string{"a", "a", "a", "a", "b", "c</w>"}, []string{"aa", "aa", "bc</w>"}},
		{"later rank after a round", []string{"a", "a", "a", "q</w>"}, []string{"aaa", "q</w>"}},
		{"lower rank wins over position", []string{"y", "x", "y</w>"}, []string{"y", "xy</w>"}},
		{"no ranked pair", []string{"q", "r</w>"}, []string{"q", "r</w>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := rescanMerges(tc.in, ranks)
			if !slices.Equal(want, tc.want) {
				t.Fatalf("test table disagrees with the reference loop: %q", want)
			}
			if got := applyMerges(slices.Clone(tc.in), ranks); !slices.Equal(got, tc.want) {
				t.Errorf("applyMerges(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestApplyMergesMatchesRescan compares both loops on random words over
// CLIP's real merges, and on learned merges without the oracle.
func TestApplyMergesMatchesRescan(t *testing.T) {
	bt := newByteTables()
	merges := LearnMerges(testCorpus, 300)
	alphabet := []rune("aeiostnrhlcdmp")
	if m := tryClipMerges(t); m != nil {
		merges = m
		alphabet = []rune("abcdefghijklmnopqrstuvwxyzéü東京🐱")
	}
	ranks := rankMerges(merges)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(30) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		syms := wordSymbols(b.String(), bt)
		want := rescanMerges(syms, ranks)
		if got := applyMerges(syms, ranks); !slices.Equal(got, want) {
			t.Fatalf("word %q: applyMerges %q, reference loop %q", b.String(), got, want)
		}
	}
}

// tryClipMerges returns CLIP's merges when the oracle is present, else nil.
func tryClipMerges(t *testing.T) []Merge {
	var merges []Merge
	t.Run("load clip merges", func(t *testing.T) { merges = clipMergesFromShared(t) })
	return merges
}

// TestLongWordIsFast: a prompt-sized word without spaces must not take the
// reference's quadratic time (seconds with CLIP's merges, which apply in
// thousands of rounds; learned merges are too few to show it).
func TestLongWordIsFast(t *testing.T) {
	tok := clipTokenizer(t, Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for range 32000 {
		b.WriteByte(byte('a' + rng.IntN(26)))
	}
	start := time.Now()
	ids := tok.Encode(b.String())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a 32000-letter word took %v", elapsed)
	}
	if got := tok.Decode(ids); got != b.String() {
		t.Errorf("long word does not round-trip")
	}
}
