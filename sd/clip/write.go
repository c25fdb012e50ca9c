package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// File names of a Hugging Face CLIPTokenizer folder (an SD export's
// tokenizer/ directory).
const (
	vocabFile       = "vocab.json"
	mergesFile      = "merges.txt"
	configFile      = "tokenizer_config.json"
	specialsMapFile = "special_tokens_map.json"
)

// addedToken is how transformers writes a special token as an object.
type addedToken struct {
	Content    string `json:"content"`
	LStrip     bool   `json:"lstrip"`
	Normalized bool   `json:"normalized"`
	RStrip     bool   `json:"rstrip"`
	SingleWord bool   `json:"single_word"`
}

func newAddedToken(s string) addedToken { return addedToken{Content: s, Normalized: true} }

// WriteFolder writes a tokenizer folder as SD exports carry it: vocab.json
// (ids in order), merges.txt, tokenizer_config.json and
// special_tokens_map.json. pad is the pad token: "<|endoftext|>" (SD 1.x)
// or "!" (SD 2.x). The folder is created if needed.
func WriteFolder(dir string, merges []Merge, pad string) error {
	for i, m := range merges {
		if m.A == "" || m.B == "" || strings.ContainsFunc(m.A+m.B, unicode.IsSpace) {
			return fmt.Errorf("write tokenizer folder: %w: merge %d (%q %q) is not two non-blank symbols", ErrFormat, i+1, m.A, m.B)
		}
	}
	vocab := VocabFromMerges(merges)
	if _, ok := vocab[pad]; !ok {
		return fmt.Errorf("write tokenizer folder: %w: pad token %q is not in the vocabulary", ErrVocab, pad)
	}
	vocabJSON, err := marshalVocab(vocab)
	if err != nil {
		return fmt.Errorf("write tokenizer folder: %w", err)
	}
	var mergesTxt strings.Builder
	mergesTxt.WriteString("#version: 0.2\n")
	for _, m := range merges {
		mergesTxt.WriteString(m.A + " " + m.B + "\n")
	}
	specials := map[string]any{
		"bos_token": newAddedToken(bosToken),
		"eos_token": newAddedToken(eosToken),
		"unk_token": newAddedToken(eosToken),
		"pad_token": pad, // a plain string, as in real exports
	}
	config := map[string]any{
		"add_prefix_space":             false,
		"do_lower_case":                true,
		"errors":                       "replace",
		"model_max_length":             DefaultMaxLength,
		"tokenizer_class":              "CLIPTokenizer",
		"clean_up_tokenization_spaces": true,
	}
	for k, v := range specials {
		config[k] = v
	}
	configJSON, err := marshalIndent(config)
	if err != nil {
		return fmt.Errorf("write tokenizer folder: %w", err)
	}
	specialsJSON, err := marshalIndent(specials)
	if err != nil {
		return fmt.Errorf("write tokenizer folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write tokenizer folder: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{vocabFile, vocabJSON},
		{mergesFile, []byte(mergesTxt.String())},
		{configFile, configJSON},
		{specialsMapFile, specialsJSON},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write tokenizer folder: %w", err)
		}
	}
	return nil
}

// marshalVocab writes one "token": id pair a line, in id order, unescaped
// like transformers' ensure_ascii=False.
func marshalVocab(vocab map[string]int) ([]byte, error) {
	toks := make([]string, 0, len(vocab))
	for tok := range vocab {
		toks = append(toks, tok)
	}
	slices.SortFunc(toks, func(a, b string) int { return vocab[a] - vocab[b] })
	var buf bytes.Buffer
	buf.WriteString("{")
	for i, tok := range toks {
		key, err := marshalNoEscape(tok)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, "\n  %s: %d", key, vocab[tok])
	}
	buf.WriteString("\n}\n")
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
