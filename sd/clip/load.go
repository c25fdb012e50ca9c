package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// Load reads a tokenizer folder: vocab.json, merges.txt, and the pad token
// and model_max_length from tokenizer_config.json and/or
// special_tokens_map.json (the latter wins, as in transformers). Like
// transformers it reads at most CLIP's 48894 merges. The specials must be
// CLIP's own <|startoftext|> and <|endoftext|>.
func Load(dir string) (*Tokenizer, error) {
	var vocab map[string]int
	if err := readJSON(dir, vocabFile, &vocab); err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	merges, err := readMergesFile(dir)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	opts, err := readOptions(dir)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := New(vocab, merges, opts)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", dir, err)
	}
	return t, nil
}

func readMergesFile(dir string) ([]Merge, error) {
	f, err := os.Open(filepath.Join(dir, mergesFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	merges, err := readMerges(f, clipMerges)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mergesFile, err)
	}
	return merges, nil
}

// tokenConfig is the part of both config files the tokenizer reads.
type tokenConfig struct {
	BOS            specialToken     `json:"bos_token"`
	EOS            specialToken     `json:"eos_token"`
	Pad            specialToken     `json:"pad_token"`
	ModelMaxLength *json.RawMessage `json:"model_max_length"`
}

// specialToken accepts a token written as a string or as an object with
// "content"; null or absent leaves it empty.
type specialToken string

func (s *specialToken) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(data, &str); err == nil {
		*s = specialToken(str)
		return nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(data, &obj); err != nil || obj.Content == nil {
		return fmt.Errorf("want a string or an object with \"content\", got %.60s", data)
	}
	*s = specialToken(*obj.Content)
	return nil
}

// readOptions merges the two config files; at least one must exist and
// between them they must name the pad token.
func readOptions(dir string) (Options, error) {
	var opts Options
	found := false
	for _, name := range []string{configFile, specialsMapFile} {
		var cfg tokenConfig
		err := readJSON(dir, name, &cfg)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Options{}, err
		}
		found = true
		for _, s := range []struct {
			field string
			got   specialToken
			want  string
		}{{"bos_token", cfg.BOS, bosToken}, {"eos_token", cfg.EOS, eosToken}} {
			if s.got != "" && string(s.got) != s.want {
				return Options{}, fmt.Errorf("%s: %w: %s is %q, only %q is supported", name, ErrFormat, s.field, s.got, s.want)
			}
		}
		if cfg.Pad != "" {
			opts.PadToken = string(cfg.Pad)
		}
		if cfg.ModelMaxLength != nil {
			n, err := parseMaxLength(*cfg.ModelMaxLength)
			if err != nil {
				return Options{}, fmt.Errorf("%s: %w", name, err)
			}
			opts.MaxLength = n
		}
	}
	if !found {
		return Options{}, fmt.Errorf("%w: neither %s nor %s found in %s", fs.ErrNotExist, configFile, specialsMapFile, dir)
	}
	if opts.PadToken == "" {
		return Options{}, fmt.Errorf("%w: no pad_token in %s or %s", ErrFormat, configFile, specialsMapFile)
	}
	return opts, nil
}

// parseMaxLength accepts an integral JSON number in New's range; the
// huge "unset" value transformers writes (1e30) is rejected there.
func parseMaxLength(raw json.RawMessage) (int, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("%w: model_max_length %.40s is not an integer", ErrFormat, raw)
	}
	if f < 2 || f > maxMaxLength {
		return 0, fmt.Errorf("%w: model_max_length %.0f, want 2..%d", ErrFormat, f, maxMaxLength)
	}
	return int(f), nil
}

func readJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w: %w", name, ErrFormat, err)
	}
	return nil
}
