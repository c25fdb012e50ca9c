package clip

import (
	"slices"
	"testing"
)

func TestLearnMergesDeterministic(t *testing.T) {
	first := LearnMerges(testCorpus, 150)
	if len(first) != 150 {
		t.Fatalf("learned %d merges, want 150", len(first))
	}
	for range 5 { // map iteration order differs run to run
		if again := LearnMerges(testCorpus, 150); !slices.Equal(again, first) {
			t.Fatalf("LearnMerges differs between runs:\n%q\n%q", first, again)
		}
	}
	if prefix := LearnMerges(testCorpus, 40); !slices.Equal(prefix, first[:40]) {
		t.Errorf("LearnMerges(40) is not a prefix of LearnMerges(150)")
	}
}

func TestLearnMergesSmallCorpus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		corpus string
		n      int
		want   []Merge
	}{
		{"most frequent first", "ab ab ab cd", 2, []Merge{{"a", "b</w>"}, {"c", "d</w>"}}},
		{"ties in byte order", "xy ab", 1, []Merge{{"a", "b</w>"}}},
		{"counts across words", "the then them", 2, []Merge{{"t", "h"}, {"th", "e"}}},
		{"stops when nothing is left", "ab", 5, []Merge{{"a", "b</w>"}}},
		{"specials are not learned", "<|endoftext|> <|startoftext|>", 3, nil},
		{"zero", "ab", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LearnMerges(tc.corpus, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("LearnMerges(%q, %d) = %q, want %q", tc.corpus, tc.n, got, tc.want)
			}
		})
	}
}

func TestLearnedTokenizerEncodes(t *testing.T) {
	dir, merges := writeLearnedFolder(t, "<|endoftext|>")
	tok, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	vocab := VocabFromMerges(merges)
	if len(vocab) != 256*2+len(merges)+2 || tok.EOS() != len(vocab)-1 || tok.BOS() != len(vocab)-2 {
		t.Errorf("vocab %d entries, bos %d, eos %d: want dense ids ending in BOS, EOS", len(vocab), tok.BOS(), tok.EOS())
	}
	// Frequent corpus words become single tokens.
	if got, want := tok.Encode("a photo of a cat"), []int{
		tok.BOS(), vocab["a</w>"], vocab["photo</w>"], vocab["of</w>"], vocab["a</w>"], vocab["cat</w>"], tok.EOS(),
	}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	// Unseen text still encodes, byte by byte at worst, and decodes back.
	if got := tok.Decode(tok.Encode("zebra ₿ quokka")); got != "zebra ₿ quokka" {
		t.Errorf("round trip = %q", got)
	}
}
