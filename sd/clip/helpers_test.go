package clip

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedClipDir locates ../shared/clip beside the repository root, skipping
// the test when the oracle files are absent.
func sharedClipDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("skipping: repository root (go.mod) not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared", "clip")
	if _, err := os.Stat(filepath.Join(shared, "bpe_simple_vocab_16e6.txt.gz")); err != nil {
		t.Skipf("skipping: CLIP oracle not available (%v)", err)
	}
	return shared
}

// clipMergesFromShared reads CLIP's real merges from the shared oracle.
func clipMergesFromShared(t testing.TB) []Merge {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedClipDir(t), "bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	merges, err := ReadBPE(f)
	if err != nil {
		t.Fatalf("ReadBPE: %v", err)
	}
	return merges
}

// clipTokenizer builds the real CLIP tokenizer (skips without the oracle).
func clipTokenizer(t testing.TB, opts Options) *Tokenizer {
	t.Helper()
	merges := clipMergesFromShared(t)
	tok, err := New(VocabFromMerges(merges), merges, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tok
}

// testCorpus trains the small tokenizers that run without the oracle.
const testCorpus = `a photo of a cat sitting on a windowsill, highly detailed, 8k.
an astronaut riding a horse on mars; portrait of a woman, masterpiece, best quality.
it's a dog's life: they're here, we've gone, I'll stay, you'd know, I'm sure.
photorealistic landscape at golden hour, trending on artstation, bokeh, 35mm f/1.8.
café naïve résumé Straße — 東京の夜景, neon lights &amp; rain &lt;3 🐱🚀`

// learnedTokenizer builds a small tokenizer from testCorpus.
func learnedTokenizer(t testing.TB, opts Options) *Tokenizer {
	t.Helper()
	merges := LearnMerges(testCorpus, 200)
	tok, err := New(VocabFromMerges(merges), merges, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tok
}
