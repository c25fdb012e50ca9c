package clip

import (
	"unicode"
	"unicode/utf8"
)

// CLIP splits normalized text with the ordered alternation
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// compiled IGNORECASE. Python tries the alternatives in order at each
// position (first match wins, not longest) and skips a rune where none
// matches, which only whitespace does. This scanner does the same.

// literals are the fixed alternatives, in pattern order.
var literals = [...]string{bosToken, eosToken, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// splitWords appends the words of normalized text to dst.
func splitWords(dst []string, text string) []string {
	for i := 0; i < len(text); {
		if n := matchLiteral(text[i:]); n > 0 {
			dst = append(dst, text[i:i+n])
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case unicode.IsLetter(r):
			end := i + size
			for end < len(text) {
				r, size := utf8.DecodeRuneInString(text[end:])
				if !unicode.IsLetter(r) {
					break
				}
				end += size
			}
			dst = append(dst, text[i:end])
			i = end
		case unicode.IsNumber(r):
			dst = append(dst, text[i:i+size])
			i += size
		case unicode.IsSpace(r):
			i += size
		default:
			end := i + size
			for end < len(text) {
				r, size := utf8.DecodeRuneInString(text[end:])
				if unicode.IsSpace(r) || unicode.IsLetter(r) || unicode.IsNumber(r) {
					break
				}
				end += size
			}
			dst = append(dst, text[i:end])
			i = end
		}
	}
	return dst
}

// matchLiteral returns the byte length of the first literal alternative
// that s starts with, or 0. Matching folds case as IGNORECASE does, so the
// long s "ſ" still counts as "s" after lowercasing.
func matchLiteral(s string) int {
	if s == "" || (s[0] != '<' && s[0] != '\'') {
		return 0
	}
	for _, lit := range literals {
		if n := prefixFold(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

// prefixFold returns the byte length of the prefix of s equal to the ASCII
// literal lit under simple case folding, or 0.
func prefixFold(s, lit string) int {
	n := 0
	for j := 0; j < len(lit); j++ {
		if n >= len(s) {
			return 0
		}
		r, size := utf8.DecodeRuneInString(s[n:])
		if !foldEqual(r, rune(lit[j])) {
			return 0
		}
		n += size
	}
	return n
}

func foldEqual(r, want rune) bool {
	if r == want {
		return true
	}
	for f := unicode.SimpleFold(want); f != want; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}
