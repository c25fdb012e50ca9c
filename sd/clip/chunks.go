package clip

import (
	"fmt"
	"unicode/utf8"
)

// Chunks is a prompt cut into text-encoder windows, the way AUTOMATIC1111
// and ComfyUI take prompts longer than CLIP's 77 tokens: each window is
// BOS, at most MaxLength-2 tokens, EOS and padding; the caller encodes
// every window and concatenates the embeddings along the token axis.
type Chunks struct {
	// IDs holds one MaxLength row per window, at least one.
	IDs [][]int
	// Kept is the decoded text of every kept token (see Encoding.Kept).
	Kept string
	// Truncated reports that tokens were dropped past the last window.
	Truncated bool
	// Tokens counts the real ids in IDs (every window's BOS and EOS
	// included, pad not).
	Tokens int
}

// EncodeChunks encodes text into at most maxChunks windows of MaxLength-2
// tokens. A word's tokens stay in one window when they fit in one (a word
// that would straddle a boundary starts the next window), except in the
// last window allowed, which is filled to the brim as EncodePadded fills
// its single one: EncodeChunks(text, 1) equals EncodePadded(text).
func (t *Tokenizer) EncodeChunks(text string, maxChunks int) (Chunks, error) {
	if maxChunks < 1 {
		return Chunks{}, fmt.Errorf("%w: %d chunks, want at least 1", ErrOption, maxChunks)
	}
	if !utf8.ValidString(text) {
		return Chunks{}, ErrInvalidText
	}
	window := t.maxLen - 2
	var (
		c    Chunks
		kept []int
		cur  = make([]int, 0, window)
	)
	flush := func() {
		row := make([]int, 0, t.maxLen)
		row = append(row, t.bos)
		row = append(row, cur...)
		row = append(row, t.eos)
		c.Tokens += len(row)
		for len(row) < t.maxLen {
			row = append(row, t.pad)
		}
		c.IDs = append(c.IDs, row)
		kept = append(kept, cur...)
		cur = cur[:0]
	}
	for _, w := range splitWords(nil, normalize(text)) {
		ids := t.wordIDs(w)
		last := len(c.IDs) == maxChunks-1
		if len(cur)+len(ids) > window && len(ids) <= window && len(cur) > 0 && !last {
			flush()
		}
		for len(ids) > 0 {
			if len(cur) == window {
				if len(c.IDs) == maxChunks-1 {
					c.Truncated = true
					break
				}
				flush()
			}
			n := min(window-len(cur), len(ids))
			cur = append(cur, ids[:n]...)
			ids = ids[n:]
		}
		if c.Truncated {
			break
		}
	}
	if len(cur) > 0 || len(c.IDs) == 0 {
		flush()
	}
	c.Kept = t.decode(kept, false)
	return c, nil
}

// EmptyChunk is the window of an empty prompt (BOS, EOS, padding): what a
// shorter prompt is padded with so that the prompt and the negative prompt
// have as many windows.
func (t *Tokenizer) EmptyChunk() []int {
	row := make([]int, t.maxLen)
	row[0], row[1] = t.bos, t.eos
	for i := 2; i < len(row); i++ {
		row[i] = t.pad
	}
	return row
}
