package clip

import (
	"slices"
	"testing"
	"unicode/utf8"
)

func FuzzEncode(f *testing.F) {
	for _, seed := range []string{
		"", "a photo of a cat", "it's a dog's life", "<|startoftext|>x<|endoftext|>",
		"!<|endoftext|>", "café 東京の夜景 🐱🚀", "&amp;amp;lt;", "ΟΔΟΣ İ 'ſ", "a\xffb\xc3", "\x00\t\u2028",
	} {
		f.Add(seed)
	}
	learned := learnedTokenizer(f, Options{MaxLength: 12})
	f.Fuzz(func(t *testing.T, text string) {
		ids := learned.Encode(text)
		if len(ids) < 2 || ids[0] != learned.BOS() || ids[len(ids)-1] != learned.EOS() {
			t.Fatalf("Encode(%q) = %v, want BOS ... EOS", text, ids)
		}
		for _, id := range ids {
			if _, ok := learned.decoder[id]; !ok {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary", text, id)
			}
		}
		if s := learned.Decode(ids); !utf8.ValidString(s) {
			t.Fatalf("Decode gave invalid UTF-8 %q", s)
		}
		for _, w := range splitWords(nil, normalize(text)) {
			syms := wordSymbols(w, learned.bytes)
			want := rescanMerges(syms, learned.ranks)
			if got := applyMerges(syms, learned.ranks); !slices.Equal(got, want) {
				t.Fatalf("word %q: applyMerges %q, reference loop %q", w, got, want)
			}
		}
		enc, err := learned.EncodePadded(text)
		if err != nil {
			if utf8.ValidString(text) {
				t.Fatalf("EncodePadded(%q): %v", text, err)
			}
			return
		}
		if len(enc.IDs) != 12 || enc.IDs[enc.Tokens-1] != learned.EOS() || enc.Truncated != (len(ids) > 12) {
			t.Fatalf("EncodePadded(%q) = %+v for %d ids", text, enc, len(ids))
		}
	})
}
