package clip

import (
	"slices"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"lowercase", "A Photo Of A Cat", "a photo of a cat"},
		{"whitespace runs", "  lots \t of\n\nspaces\u00a0here  ", "lots of spaces here"},
		{"html once", "a &amp; b &lt;c&gt;", "a & b <c>"},
		{"html twice", "fish &amp;amp; chips", "fish & chips"},
		{"html not thrice", "&amp;amp;amp;", "&amp;"},
		{"dotted capital i", "İstanbul", "i\u0307stanbul"},
		{"final sigma", "ΟΔΟΣ ΣΟΦΟΣ.", "οδος σοφος."},
		{"lone sigma", "Σ", "σ"},
		{"sigma mid-word", "ΣΑΣ ΑΣΑ", "σας ασα"},
		{"invalid utf8", "a\xffb", "a\ufffdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalize(tc.in); got != tc.want {
				t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"words", "a photo of", []string{"a", "photo", "of"}},
		{"digits one by one", "8k 35mm", []string{"8", "k", "3", "5", "mm"}},
		{"punctuation runs", "wow!!! (x:1.2)", []string{"wow", "!!!", "(", "x", ":", "1", ".", "2", ")"}},
		{"contractions", "it's they're we've i'll you'd i'm don't", []string{
			"it", "'s", "they", "'re", "we", "'ve", "i", "'ll", "you", "'d", "i", "'m", "don", "'t"}},
		{"contraction first", "'tis", []string{"'t", "is"}},
		{"quote run before s", "''s", []string{"''", "s"}},
		{"long s folds to s", "dog'ſ", []string{"dog", "'ſ"}},
		{"specials", "<|startoftext|>in<|endoftext|>", []string{"<|startoftext|>", "in", "<|endoftext|>"}},
		{"special swallowed by punctuation", "!<|endoftext|>", []string{"!<|", "endoftext", "|>"}},
		{"marks are not letters", "i\u0307x", []string{"i", "\u0307", "x"}},
		{"cjk is one letter run", "東京の夜景, neon", []string{"東京の夜景", ",", "neon"}},
		{"emoji", "🐱🚀 cat", []string{"🐱🚀", "cat"}},
		{"other numbers", "½²", []string{"½", "²"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := splitWords(nil, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("splitWords(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
