package clip

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
)

// Merge is one BPE merge rule: adjacent symbols A and B become A+B. Its
// rank is its position in the merge list (lower merges first).
type Merge struct{ A, B string }

// Vocabulary layout shared by every CLIP tokenizer.
const (
	// clipMerges is how many merges CLIP uses: 49152 tokens less the 256
	// byte symbols and the 2 specials (the reference's merges[1:48895]).
	clipMerges = 49152 - 256 - 2

	bosToken = "<|startoftext|>"
	eosToken = "<|endoftext|>"
	wordEnd  = "</w>"
)

// ReadBPE reads OpenAI's bpe_simple_vocab_16e6.txt (plain or gzip'd): a
// version header line, then one "a b" merge per line. It returns the first
// 48894 merges, the ones CLIP's vocabulary is built from, or fewer when the
// file is shorter.
func ReadBPE(r io.Reader) ([]Merge, error) {
	merges, err := readMerges(r, clipMerges)
	if err != nil {
		return nil, fmt.Errorf("read bpe merges: %w", err)
	}
	return merges, nil
}

// readMerges parses a merges file (gzip detected by its magic bytes): the
// first line must be a "#version" header; at most limit merges are read,
// the rest of the file is left unread. Blank lines may only trail.
func readMerges(r io.Reader, limit int) ([]Merge, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrFormat, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	sc := bufio.NewScanner(br)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: empty file, want a #version header", ErrFormat)
	}
	if !strings.Contains(sc.Text(), "#version") {
		return nil, fmt.Errorf("%w: line 1: want a #version header, got %.40q", ErrFormat, sc.Text())
	}
	var merges []Merge
	blankAt := 0 // first blank line seen, an error if a merge follows it
	for line := 2; len(merges) < limit && sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			if blankAt == 0 {
				blankAt = line
			}
			continue
		}
		if blankAt != 0 {
			return nil, fmt.Errorf("%w: line %d: blank line inside the merges", ErrFormat, blankAt)
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d: want two symbols, got %.40q", ErrFormat, line, sc.Text())
		}
		merges = append(merges, Merge{A: fields[0], B: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return merges, nil
}

// VocabFromMerges builds CLIP's vocabulary: the 256 byte symbols, the same
// with "</w>", every merge joined, then <|startoftext|> and <|endoftext|>.
// Ids are list positions; as in the reference, a repeated string keeps its
// last id. For CLIP's 48894 merges that is 49408 entries, EOS = 49407.
func VocabFromMerges(merges []Merge) map[string]int {
	base := baseSymbols()
	vocab := make(map[string]int, 2*len(base)+len(merges)+2)
	id := 0
	add := func(s string) {
		vocab[s] = id
		id++
	}
	for _, s := range base {
		add(s)
	}
	for _, s := range base {
		add(s + wordEnd)
	}
	for _, m := range merges {
		add(m.A + m.B)
	}
	add(bosToken)
	add(eosToken)
	return vocab
}
