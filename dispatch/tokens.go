package dispatch

import "unicode"

// estimateTokens approximates CLIP's token count when the gateway has no
// tokenizer: one token per pre-tokenizer piece (a run of letters, one
// digit, a run of other symbols) plus start and end, capped at CLIP's 77.
// BPE splits rare words further, so it is a lower bound.
func estimateTokens(text string) int {
	pieces, prev := 0, ' '
	for _, r := range text {
		class := 'S'
		switch {
		case unicode.IsSpace(r):
			prev = ' '
			continue
		case unicode.IsNumber(r):
			pieces++
			prev = 'N'
			continue
		case unicode.IsLetter(r):
			class = 'L'
		}
		if prev != class {
			pieces++
		}
		prev = class
	}
	return min(pieces+2, 77)
}
