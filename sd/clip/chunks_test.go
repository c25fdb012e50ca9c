package clip

import (
	"slices"
	"strings"
	"testing"
)

// checkChunks asserts the shape of every window and returns the tokens
// between each window's BOS and EOS, in order.
func checkChunks(t *testing.T, tok *Tokenizer, c Chunks, maxChunks int) [][]int {
	t.Helper()
	if len(c.IDs) == 0 || len(c.IDs) > maxChunks {
		t.Fatalf("%d windows, want 1..%d", len(c.IDs), maxChunks)
	}
	var inner [][]int
	tokens := 0
	for i, row := range c.IDs {
		if len(row) != tok.MaxLength() || row[0] != tok.BOS() {
			t.Fatalf("window %d: %d ids starting %d", i, len(row), row[0])
		}
		// The closing EOS is the last id before the padding. When the pad
		// is EOS itself (SD 1.x) it is the first of the trailing run, so
		// callers keep literal <|endoftext|> out of such texts.
		end := len(row) - 1
		for end > 0 && row[end] == tok.PadID() {
			end--
		}
		if tok.PadID() == tok.EOS() {
			end++
		}
		if end < 1 || end >= len(row) || row[end] != tok.EOS() {
			t.Fatalf("window %d has no closing EOS: %v", i, row)
		}
		inner = append(inner, row[1:end])
		tokens += end + 1
	}
	if tokens != c.Tokens {
		t.Errorf("Tokens = %d, counted %d", c.Tokens, tokens)
	}
	return inner
}

// endsWord reports whether id closes a word (its symbol ends in </w>, or
// it is a special token), so a window boundary after it splits no word.
func endsWord(tok *Tokenizer, id int) bool {
	return strings.HasSuffix(tok.decoder[id], wordEnd) || id == tok.BOS() || id == tok.EOS()
}

// checkBoundaries: every boundary but a truncated last one falls between
// words, unless a word is longer than a window.
func checkBoundaries(t *testing.T, tok *Tokenizer, inner [][]int) {
	t.Helper()
	for i := 0; i+1 < len(inner); i++ {
		if w := inner[i]; len(w) > 0 && !endsWord(tok, w[len(w)-1]) {
			t.Errorf("window %d ends inside a word (last token %q, next %q)", i, tok.decoder[w[len(w)-1]], tok.decoder[inner[i+1][0]])
		}
	}
}

func TestEncodeChunks(t *testing.T) {
	tok := learnedTokenizer(t, Options{MaxLength: 12, PadToken: "!"}) // windows of 10 tokens
	long := strings.Repeat("a photo of a cat sitting on a windowsill, ", 6)
	longWord := "x" + strings.Repeat("é", 30) // one word over a window: it must be split
	for _, text := range []string{"", "a cat", long, strings.Repeat("photorealistic ", 40), longWord, "<|endoftext|> a cat!!"} {
		ids := tok.Encode(text)
		want := ids[1 : len(ids)-1]
		for _, maxChunks := range []int{1, 2, 4, 100} {
			c, err := tok.EncodeChunks(text, maxChunks)
			if err != nil {
				t.Fatal(err)
			}
			inner := checkChunks(t, tok, c, maxChunks)
			got := slices.Concat(inner...)
			if c.Truncated != (len(got) < len(want)) || !slices.Equal(got, want[:len(got)]) {
				t.Fatalf("%.30q in %d: kept %d of %d tokens (truncated %v), not a prefix", text, maxChunks, len(got), len(want), c.Truncated)
			}
			if c.Kept != tok.decode(got, false) {
				t.Errorf("Kept %q", c.Kept)
			}
			if maxChunks == 1 {
				padded, _ := tok.EncodePadded(text)
				if !slices.Equal(c.IDs[0], padded.IDs) || c.Kept != padded.Kept || c.Truncated != padded.Truncated || c.Tokens != padded.Tokens {
					t.Errorf("%.30q: one window differs from EncodePadded", text)
				}
			}
			if !c.Truncated && text != longWord {
				checkBoundaries(t, tok, inner)
			}
		}
	}
	if _, err := tok.EncodeChunks("a", 0); err == nil {
		t.Error("0 chunks accepted")
	}
	if _, err := tok.EncodeChunks("a\xff", 2); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if e := tok.EmptyChunk(); len(e) != 12 || e[0] != tok.BOS() || e[1] != tok.EOS() || e[11] != tok.PadID() {
		t.Errorf("EmptyChunk = %v", e)
	}
}

// TestEncodeChunksOracle cuts long prompts made of the reference prompts
// into 75-token windows with the real CLIP vocabulary: the windows hold
// exactly the reference algorithm's ids, in order, and split no word.
func TestEncodeChunksOracle(t *testing.T) {
	refs := readReferenceEncodings(t)
	for _, pad := range []string{"<|endoftext|>", "!"} { // SD 1.x, SD 2.x
		tok := clipTokenizer(t, Options{PadToken: pad})
		var texts []string
		var want []int
		for len(want) < 4*75+30 {
			for _, ref := range refs {
				if pad == eosToken && strings.Contains(ref.Text, "<|") {
					continue // a literal end token would read as padding (see checkChunks)
				}
				texts = append(texts, ref.Text)
				want = append(want, ref.IDs[1:len(ref.IDs)-1]...)
			}
		}
		// A space never joins two words, so the ids of the joined text are
		// the references' ids laid end to end.
		text := strings.Join(texts, " ")
		c, err := tok.EncodeChunks(text, 100)
		if err != nil {
			t.Fatal(err)
		}
		inner := checkChunks(t, tok, c, 100)
		if got := slices.Concat(inner...); !slices.Equal(got, want) || c.Truncated {
			t.Fatalf("pad %q: windows hold %d ids, want the reference's %d", pad, len(got), len(want))
		}
		if len(inner) < 5 {
			t.Fatalf("%d windows for %d tokens", len(inner), len(want))
		}
		for i, w := range inner {
			if len(w) > 75 || (i+1 < len(inner) && len(w) < 60) {
				t.Errorf("window %d holds %d tokens", i, len(w))
			}
		}
		checkBoundaries(t, tok, inner)

		three, err := tok.EncodeChunks(text, 3)
		if err != nil {
			t.Fatal(err)
		}
		kept := slices.Concat(checkChunks(t, tok, three, 3)...)
		if !three.Truncated || len(three.IDs) != 3 || !slices.Equal(kept, want[:len(kept)]) || len(kept) < 3*60 {
			t.Errorf("pad %q: 3 windows keep %d tokens, truncated %v", pad, len(kept), three.Truncated)
		}
	}
}

func FuzzEncodeChunks(f *testing.F) {
	for _, seed := range []string{"", "a photo of a cat, highly detailed", strings.Repeat("café 東京 ", 20), "<|endoftext|>!!", "a\xff"} {
		f.Add(seed, 3)
	}
	tok := learnedTokenizer(f, Options{MaxLength: 8, PadToken: "!"})
	f.Fuzz(func(t *testing.T, text string, maxChunks int) {
		maxChunks = 1 + abs(maxChunks)%6
		c, err := tok.EncodeChunks(text, maxChunks)
		if err != nil {
			return
		}
		ids := tok.Encode(text)
		got := slices.Concat(checkChunks(t, tok, c, maxChunks)...)
		if want := ids[1 : len(ids)-1]; len(got) > len(want) || !slices.Equal(got, want[:len(got)]) || c.Truncated != (len(got) < len(want)) {
			t.Fatalf("EncodeChunks(%q, %d) kept %v of %v", text, maxChunks, got, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
