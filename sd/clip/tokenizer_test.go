package clip

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestEncodePaddedTruncates(t *testing.T) {
	long := strings.Repeat("a very long prompt ", 30) + "tail words"
	tok := learnedTokenizer(t, Options{})
	full := tok.Encode(long)
	if len(full) <= 77 {
		t.Fatalf("test prompt has %d ids, want more than 77", len(full))
	}
	enc, err := tok.EncodePadded(long)
	if err != nil {
		t.Fatalf("EncodePadded: %v", err)
	}
	if len(enc.IDs) != 77 || enc.IDs[0] != tok.BOS() || enc.IDs[76] != tok.EOS() {
		t.Fatalf("ids: len %d, first %d, last %d; want 77, BOS, EOS", len(enc.IDs), enc.IDs[0], enc.IDs[76])
	}
	if !slices.Equal(enc.IDs[:76], full[:76]) {
		t.Errorf("kept ids %v are not the first 76 of %v", enc.IDs[:76], full[:76])
	}
	if !enc.Truncated || enc.Tokens != 77 {
		t.Errorf("Truncated %v, Tokens %d; want true, 77", enc.Truncated, enc.Tokens)
	}
	if want := tok.Decode(full[:76]); enc.Kept != want {
		t.Errorf("Kept = %q, want %q", enc.Kept, want)
	}
	if !strings.HasPrefix(long, enc.Kept) || strings.Contains(enc.Kept, "tail") {
		t.Errorf("Kept = %q, want a proper prefix of the prompt", enc.Kept)
	}
}

func TestEncodePaddedShortPrompt(t *testing.T) {
	tok := learnedTokenizer(t, Options{MaxLength: 16})
	enc, err := tok.EncodePadded("A Photo of a CAT,  highly detailed")
	if err != nil {
		t.Fatalf("EncodePadded: %v", err)
	}
	full := tok.Encode("a photo of a cat, highly detailed")
	if enc.Truncated || enc.Tokens != len(full) || len(enc.IDs) != 16 {
		t.Fatalf("got Truncated %v, Tokens %d, %d ids; want false, %d, 16", enc.Truncated, enc.Tokens, len(enc.IDs), len(full))
	}
	if !slices.Equal(enc.IDs[:len(full)], full) {
		t.Errorf("ids %v do not start with %v", enc.IDs, full)
	}
	for i, id := range enc.IDs[len(full):] {
		if id != tok.PadID() {
			t.Errorf("IDs[%d] = %d, want pad %d", len(full)+i, id, tok.PadID())
		}
	}
	if want := "a photo of a cat , highly detailed"; enc.Kept != want {
		t.Errorf("Kept = %q, want %q", enc.Kept, want)
	}
}

func TestEncodePaddedExactFit(t *testing.T) {
	tok := learnedTokenizer(t, Options{})
	n := len(tok.Encode("cat"))
	tok, err := New(tok.encoder, LearnMerges(testCorpus, 200), Options{MaxLength: n})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.EncodePadded("cat")
	if err != nil {
		t.Fatal(err)
	}
	if enc.Truncated || enc.Tokens != n || enc.Kept != "cat" {
		t.Errorf("got %+v, want an untruncated fit of %d ids", enc, n)
	}
}

func TestEncodePaddedRejectsInvalidUTF8(t *testing.T) {
	tok := learnedTokenizer(t, Options{})
	if _, err := tok.EncodePadded("cat \xff"); !errors.Is(err, ErrInvalidText) {
		t.Errorf("EncodePadded error = %v, want ErrInvalidText", err)
	}
}

func TestKeptSpecialTokensAndCutCharacters(t *testing.T) {
	tok := learnedTokenizer(t, Options{MaxLength: 6})
	enc, err := tok.EncodePadded("<|startoftext|>cat<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|startoftext|>cat <|endoftext|>"; enc.Kept != want {
		t.Errorf("Kept = %q, want %q", enc.Kept, want)
	}
	// A four-byte character (unseen by the corpus, so one id per byte) cut
	// after three bytes decodes to U+FFFD.
	tok = learnedTokenizer(t, Options{MaxLength: 5})
	enc, err = tok.EncodePadded("𝄞𝄞𝄞")
	if err != nil {
		t.Fatal(err)
	}
	if !enc.Truncated || enc.Kept != "\ufffd" {
		t.Errorf("got %+v, want a truncated Kept ending in U+FFFD", enc)
	}
}

func TestDecode(t *testing.T) {
	tok := learnedTokenizer(t, Options{})
	for _, tc := range []struct{ name, in, want string }{
		{"words", "a photo of a cat", "a photo of a cat"},
		{"punctuation spaced", "cat, dog!", "cat , dog !"},
		{"unicode", "café 東京 🐱", "café 東京 🐱"},
		{"html unescaped", "fish &amp; chips", "fish & chips"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tok.Decode(tok.Encode(tc.in)); got != tc.want {
				t.Errorf("Decode(Encode(%q)) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := tok.Decode([]int{-1, 1 << 30, tok.BOS(), tok.EOS()}); got != "" {
		t.Errorf("Decode of unknown and special ids = %q, want empty", got)
	}
}

func TestNewRejects(t *testing.T) {
	merges := LearnMerges(testCorpus, 50)
	vocab := VocabFromMerges(merges)
	without := func(tok string) map[string]int {
		v := make(map[string]int, len(vocab))
		for k, id := range vocab {
			if k != tok {
				v[k] = id
			}
		}
		return v
	}
	dupID := without("")
	dupID["extra"] = 0
	product := merges[10].A + merges[10].B
	for _, tc := range []struct {
		name   string
		vocab  map[string]int
		opts   Options
		target error
	}{
		{"max length 1", vocab, Options{MaxLength: 1}, ErrOption},
		{"max length huge", vocab, Options{MaxLength: 1 << 20}, ErrOption},
		{"negative max length", vocab, Options{MaxLength: -5}, ErrOption},
		{"pad not in vocab", vocab, Options{PadToken: "<pad>"}, ErrVocab},
		{"no bos", without("<|startoftext|>"), Options{}, ErrVocab},
		{"no eos", without("<|endoftext|>"), Options{}, ErrVocab},
		{"missing byte symbol", without("Ġ</w>"), Options{}, ErrVocab},
		{"missing merge product", without(product), Options{}, ErrVocab},
		{"duplicate id", dupID, Options{}, ErrVocab},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.vocab, merges, tc.opts); !errors.Is(err, tc.target) {
				t.Errorf("New error = %v, want %v", err, tc.target)
			}
		})
	}
}

// TestConcurrentEncode shares one tokenizer (and its word cache) between
// goroutines; run with -race.
func TestConcurrentEncode(t *testing.T) {
	tok := learnedTokenizer(t, Options{})
	prompts := []string{"a photo of a cat", "neon lights in the rain", "portrait, masterpiece", "a photo of a dog"}
	want := make([][]int, len(prompts))
	for i, p := range prompts {
		want[i] = slices.Clone(tok.Encode(p))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				p := (g + i) % len(prompts)
				if got := tok.Encode(prompts[p]); !slices.Equal(got, want[p]) {
					t.Errorf("Encode(%q) = %v, want %v", prompts[p], got, want[p])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestWordCacheBounded(t *testing.T) {
	c := newWordCache(3)
	for _, w := range []string{"a", "b", "c", "d", "e"} {
		c.put(w, []int{1})
	}
	if len(c.ids) != 3 {
		t.Errorf("cache holds %d words, want 3", len(c.ids))
	}
	if _, ok := c.get("e"); !ok {
		t.Error("the newest word is not cached")
	}
}
