package clip

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// DefaultMaxLength is CLIP's context length, SD's model_max_length.
	DefaultMaxLength = 77
	// maxMaxLength bounds MaxLength so a bad config cannot ask for huge
	// padded buffers.
	maxMaxLength = 1 << 16

	cacheWords    = 1 << 14 // distinct words remembered
	cacheWordSize = 256     // longer words are not cached
)

// Options are the optional knobs of New.
type Options struct {
	// MaxLength is the padded length, BOS and EOS included (default 77).
	MaxLength int
	// PadToken fills EncodePadded's ids: "<|endoftext|>" for SD 1.x (the
	// default), "!" for SD 2.x.
	PadToken string
}

// Encoding is a prompt ready for the text encoder.
type Encoding struct {
	// IDs has exactly MaxLength ids: BOS, the kept tokens, EOS, then pad.
	IDs []int
	// Kept is the decoded text of the kept tokens: what actually
	// conditions the model (lowercased, re-spaced), e.g. revised_prompt.
	Kept string
	// Truncated reports that tokens were dropped to fit MaxLength.
	Truncated bool
	// Tokens counts the real ids in IDs (BOS and EOS included, pad not).
	Tokens int
}

// Tokenizer is CLIP's BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	encoder       map[string]int
	decoder       map[int]string
	ranks         map[pair]int
	bytes         *byteTables
	cache         *wordCache
	maxLen        int
	bos, eos, pad int
}

// New builds a tokenizer from a vocabulary and its merges. The vocabulary
// must hold every byte symbol (plain and with "</w>"), every merge product,
// the two specials and the pad token; ids must be distinct and >= 0.
func New(vocab map[string]int, merges []Merge, opts Options) (*Tokenizer, error) {
	if opts.MaxLength == 0 {
		opts.MaxLength = DefaultMaxLength
	}
	if opts.MaxLength < 2 || opts.MaxLength > maxMaxLength {
		return nil, fmt.Errorf("%w: max length %d, want 2..%d", ErrOption, opts.MaxLength, maxMaxLength)
	}
	if opts.PadToken == "" {
		opts.PadToken = eosToken
	}
	decoder := make(map[int]string, len(vocab))
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("%w: token %q has negative id %d", ErrVocab, tok, id)
		}
		if other, dup := decoder[id]; dup {
			return nil, fmt.Errorf("%w: tokens %q and %q share id %d", ErrVocab, other, tok, id)
		}
		decoder[id] = tok
	}
	if err := checkCovers(vocab, merges); err != nil {
		return nil, err
	}
	t := &Tokenizer{
		encoder: vocab,
		decoder: decoder,
		ranks:   rankMerges(merges),
		bytes:   newByteTables(),
		cache:   newWordCache(cacheWords),
		maxLen:  opts.MaxLength,
	}
	for _, s := range []struct {
		name, tok string
		id        *int
	}{{"bos", bosToken, &t.bos}, {"eos", eosToken, &t.eos}, {"pad", opts.PadToken, &t.pad}} {
		id, ok := vocab[s.tok]
		if !ok {
			return nil, fmt.Errorf("%w: %s token %q is not in the vocabulary", ErrVocab, s.name, s.tok)
		}
		*s.id = id
	}
	return t, nil
}

// checkCovers makes sure every symbol BPE can produce has an id, so that
// Encode never meets an unknown token.
func checkCovers(vocab map[string]int, merges []Merge) error {
	for _, s := range baseSymbols() {
		for _, sym := range []string{s, s + wordEnd} {
			if _, ok := vocab[sym]; !ok {
				return fmt.Errorf("%w: byte symbol %q is missing", ErrVocab, sym)
			}
		}
	}
	for i, m := range merges {
		if _, ok := vocab[m.A+m.B]; !ok {
			return fmt.Errorf("%w: merge %d (%q %q) makes %q, which is missing", ErrVocab, i+1, m.A, m.B, m.A+m.B)
		}
	}
	return nil
}

// MaxLength is the padded length of EncodePadded's ids.
func (t *Tokenizer) MaxLength() int { return t.maxLen }

// PadID is the id EncodePadded pads with.
func (t *Tokenizer) PadID() int { return t.pad }

// BOS is the id of <|startoftext|>.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the id of <|endoftext|>.
func (t *Tokenizer) EOS() int { return t.eos }

// Encode returns text's ids between BOS and EOS, neither truncated nor
// padded. Invalid UTF-8 is read as U+FFFD.
func (t *Tokenizer) Encode(text string) []int {
	words := splitWords(nil, normalize(text))
	ids := make([]int, 1, len(words)+2)
	ids[0] = t.bos
	for _, w := range words {
		ids = append(ids, t.wordIDs(w)...)
	}
	return append(ids, t.eos)
}

// EncodePadded encodes text to exactly MaxLength ids: when too long, the
// tokens that fit are kept and EOS stays last; then pad ids follow.
func (t *Tokenizer) EncodePadded(text string) (Encoding, error) {
	if !utf8.ValidString(text) {
		return Encoding{}, ErrInvalidText
	}
	ids := t.Encode(text)
	enc := Encoding{Truncated: len(ids) > t.maxLen}
	if enc.Truncated {
		ids = append(ids[:t.maxLen-1], t.eos)
	}
	enc.Tokens = len(ids)
	enc.Kept = t.decode(ids[1:len(ids)-1], false)
	for len(ids) < t.maxLen {
		ids = append(ids, t.pad)
	}
	enc.IDs = ids
	return enc, nil
}

// wordIDs returns the ids of one pre-tokenised word.
func (t *Tokenizer) wordIDs(word string) []int {
	switch word {
	case bosToken:
		return []int{t.bos}
	case eosToken:
		return []int{t.eos}
	}
	if ids, ok := t.cache.get(word); ok {
		return ids
	}
	syms := applyMerges(wordSymbols(word, t.bytes), t.ranks)
	ids := make([]int, len(syms))
	for i, s := range syms {
		ids[i] = t.encoder[s] // present: New checked every product
	}
	if len(word) <= cacheWordSize {
		t.cache.put(word, ids)
	}
	return ids
}

// Decode turns ids back into text: byte symbols to bytes, "</w>" to a
// space, trimmed. BOS, EOS and unknown ids are skipped; invalid UTF-8 (a
// character cut by truncation) becomes U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	return t.decode(ids, true)
}

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	var raw []byte
	for _, id := range ids {
		if skipSpecial && (id == t.bos || id == t.eos) {
			continue
		}
		tok, ok := t.decoder[id]
		if !ok {
			continue
		}
		for _, r := range tok {
			if b, ok := t.bytes.dec[r]; ok {
				raw = append(raw, b)
			} else {
				raw = utf8.AppendRune(raw, r) // a token outside the byte alphabet
			}
		}
	}
	text := strings.ToValidUTF8(string(raw), "\uFFFD")
	return strings.TrimSpace(strings.ReplaceAll(text, wordEnd, " "))
}
