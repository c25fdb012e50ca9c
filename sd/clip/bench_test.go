package clip

import "testing"

const benchPrompt = "an astronaut riding a horse on mars, highly detailed, 8k, trending on artstation, " +
	"golden hour, bokeh, 35mm, masterpiece, best quality"

// BenchmarkEncodePadded measures a typical prompt with CLIP's real vocab
// (skipped without the oracle), warm cache and cold (every word through
// BPE), and with the small learned vocab, which always runs.
func BenchmarkEncodePadded(b *testing.B) {
	b.Run("learned", func(b *testing.B) {
		tok := learnedTokenizer(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tok.EncodePadded(benchPrompt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		tok := clipTokenizer(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tok.EncodePadded(benchPrompt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		tok := clipTokenizer(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			tok.cache = newWordCache(cacheWords)
			if _, err := tok.EncodePadded(benchPrompt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNew measures building CLIP's tokenizer from its merges.
func BenchmarkNew(b *testing.B) {
	merges := clipMergesFromShared(b)
	vocab := VocabFromMerges(merges)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(vocab, merges, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
