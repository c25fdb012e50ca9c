// Package clip is CLIP's byte-level BPE tokenizer as Stable Diffusion uses it:
// the text is html-unescaped twice, whitespace-collapsed and lowercased (ftfy
// is not applied), split with CLIP's pre-tokenisation pattern, and each word
// is byte-encoded and merged by rank. Ids match OpenAI's reference encoder and
// Hugging Face's CLIPTokenizer over the same vocab.json / merges.txt.
package clip

import "errors"

// Sentinels callers can tell apart with errors.Is.
var (
	// ErrFormat: a vocabulary, merges or config file is malformed.
	ErrFormat = errors.New("clip: malformed tokenizer data")
	// ErrVocab: the vocabulary lacks a token the tokenizer needs, or is
	// inconsistent with the merges.
	ErrVocab = errors.New("clip: inconsistent vocabulary")
	// ErrOption: an Options value is out of range.
	ErrOption = errors.New("clip: invalid option")
	// ErrInvalidText: a prompt is not valid UTF-8.
	ErrInvalidText = errors.New("clip: prompt is not valid UTF-8")
)
