package server

import (
	"unicode"

	"github.com/sdgate/sdgate/sd/spec"
)

// clipContext is CLIP's sequence length: start token, 75 text tokens, end.
const clipContext = 77

// maxPromptTokens is the most a prompt conditions with: spec.MaxPromptChunks
// windows of 75 tokens, counted with one start and one end token.
const maxPromptTokens = spec.MaxPromptChunks*(clipContext-2) + 2

// estimateCLIPTokens approximates the CLIP token count of text when no
// tokenizer is wired in (Options.CountTokens): one token per piece CLIP's
// pre-tokenizer splits off (a run of letters, a single digit, a run of
// other symbols), plus the start and end tokens, capped at maxPromptTokens.
// BPE splits long or rare words further, so this is a lower bound.
func estimateCLIPTokens(text string) int {
	pieces := 0
	prev := ' ' // class of the previous rune: 'L' letter, 'S' symbol, ' ' space
	for _, r := range text {
		switch {
		case unicode.IsSpace(r):
			prev = ' '
		case unicode.IsNumber(r):
			pieces++
			prev = 'N'
		case unicode.IsLetter(r):
			if prev != 'L' {
				pieces++
			}
			prev = 'L'
		default:
			if prev != 'S' {
				pieces++
			}
			prev = 'S'
		}
	}
	return min(pieces+2, maxPromptTokens)
}
