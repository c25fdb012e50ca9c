package clip

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeLearnedFolder(t *testing.T, pad string) (string, []Merge) {
	t.Helper()
	merges := LearnMerges(testCorpus, 200)
	dir := t.TempDir()
	if err := WriteFolder(dir, merges, pad); err != nil {
		t.Fatalf("WriteFolder: %v", err)
	}
	return dir, merges
}

func TestFolderRoundTrip(t *testing.T) {
	prompts := []string{"", "a photo of a cat", "café 東京の夜景 🐱🚀 &amp;", strings.Repeat("astronaut horse ", 40)}
	for _, pad := range []string{"<|endoftext|>", "!"} {
		t.Run(pad, func(t *testing.T) {
			dir, merges := writeLearnedFolder(t, pad)
			loaded, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			built, err := New(VocabFromMerges(merges), merges, Options{PadToken: pad})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if loaded.MaxLength() != 77 || loaded.PadID() != built.PadID() || loaded.EOS() != built.EOS() || loaded.BOS() != built.BOS() {
				t.Errorf("loaded max %d pad %d bos %d eos %d, want 77 %d %d %d", loaded.MaxLength(),
					loaded.PadID(), loaded.BOS(), loaded.EOS(), built.PadID(), built.BOS(), built.EOS())
			}
			for _, p := range prompts {
				got, err := loaded.EncodePadded(p)
				if err != nil {
					t.Fatal(err)
				}
				want, err := built.EncodePadded(p)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.IDs, want.IDs) || got.Kept != want.Kept {
					t.Errorf("EncodePadded(%.30q): loaded %v, built %v", p, got, want)
				}
			}
		})
	}
}

// TestClipPadIDs pads with the folder's pad token: SD 1.x's <|endoftext|>
// (49407) and SD 2.x's "!" (0).
func TestClipPadIDs(t *testing.T) {
	merges := clipMergesFromShared(t)
	for _, tc := range []struct {
		pad  string
		want int
	}{{"<|endoftext|>", 49407}, {"!", 0}} {
		t.Run(tc.pad, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteFolder(dir, merges, tc.pad); err != nil {
				t.Fatalf("WriteFolder: %v", err)
			}
			tok, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			enc, err := tok.EncodePadded("a photo of a cat")
			if err != nil {
				t.Fatal(err)
			}
			want := []int{49406, 320, 1125, 539, 320, 2368, 49407}
			for len(want) < 77 {
				want = append(want, tc.want)
			}
			if !slices.Equal(enc.IDs, want) || enc.Tokens != 7 || enc.Truncated {
				t.Errorf("EncodePadded = %+v, want ids %v", enc, want)
			}
		})
	}
}

// TestClipTruncation: the reference's long prompt keeps EOS at 76.
func TestClipTruncation(t *testing.T) {
	tok := clipTokenizer(t, Options{})
	long := strings.Repeat("a very long prompt ", 30)
	enc, err := tok.EncodePadded(long)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc.IDs) != 77 || enc.IDs[76] != 49407 || !enc.Truncated || enc.Tokens != 77 {
		t.Fatalf("got %+v, want 77 ids ending in EOS, truncated", enc)
	}
	// 75 content tokens: 18 whole "a very long prompt" groups and "a very long".
	want := strings.TrimSpace(strings.Repeat("a very long prompt ", 18) + "a very long")
	if enc.Kept != want {
		t.Errorf("Kept = %q, want %q", enc.Kept, want)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigForms(t *testing.T) {
	for _, tc := range []struct {
		name          string
		config, smap  string // "" leaves the file out
		wantPad       string
		wantMaxLength int
	}{
		{"config only, string pad", `{"pad_token": "!", "model_max_length": 77}`, "", "!", 77},
		{"map only, object pad", "", `{"pad_token": {"content": "!", "lstrip": false}}`, "!", 77},
		{"map wins", `{"pad_token": "!", "model_max_length": 64}`, `{"pad_token": "<|endoftext|>"}`, "<|endoftext|>", 64},
		{"added-token objects", `{"bos_token": {"__type": "AddedToken", "content": "<|startoftext|>"},
			"eos_token": {"content": "<|endoftext|>"}, "pad_token": {"content": "<|endoftext|>"}, "unk_token": null}`, "", "<|endoftext|>", 77},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, merges := writeLearnedFolder(t, "!")
			for name, content := range map[string]string{configFile: tc.config, specialsMapFile: tc.smap} {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				if content != "" {
					writeFile(t, dir, name, content)
				}
			}
			tok, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := VocabFromMerges(merges)[tc.wantPad]; tok.PadID() != want || tok.MaxLength() != tc.wantMaxLength {
				t.Errorf("pad %d, max length %d; want %d, %d", tok.PadID(), tok.MaxLength(), want, tc.wantMaxLength)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string // the file to replace
		content  string // "-" removes the file
		target   error
		wantFile string // the error must name this file
	}{
		{"no vocab", vocabFile, "-", fs.ErrNotExist, vocabFile},
		{"no merges", mergesFile, "-", fs.ErrNotExist, mergesFile},
		{"vocab not json", vocabFile, "{", ErrFormat, vocabFile},
		{"vocab wrong type", vocabFile, `{"a": "b"}`, ErrFormat, vocabFile},
		{"merges without header", mergesFile, "i n\n", ErrFormat, mergesFile},
		{"merges bad line", mergesFile, "#version: 0.2\ni n x\n", ErrFormat, mergesFile},
		{"pad object without content", configFile, `{"pad_token": {"text": "!"}}`, ErrFormat, configFile},
		{"pad not a token", specialsMapFile, `{"pad_token": 7}`, ErrFormat, specialsMapFile},
		{"foreign bos", configFile, `{"bos_token": "<s>", "pad_token": "!"}`, ErrFormat, configFile},
		{"unset max length", configFile, `{"pad_token": "!", "model_max_length": 1000000000000000019884624838656}`, ErrFormat, configFile},
		{"fractional max length", configFile, `{"pad_token": "!", "model_max_length": 76.5}`, ErrFormat, configFile},
		{"pad not in vocab", specialsMapFile, `{"pad_token": "<pad>"}`, ErrVocab, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := writeLearnedFolder(t, "!")
			if tc.content == "-" {
				if err := os.Remove(filepath.Join(dir, tc.file)); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, dir, tc.file, tc.content)
			}
			_, err := Load(dir)
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.wantFile) {
				t.Errorf("Load error = %v, want %v naming %q", err, tc.target, tc.wantFile)
			}
		})
	}
	t.Run("no configs", func(t *testing.T) {
		dir, _ := writeLearnedFolder(t, "!")
		for _, name := range []string{configFile, specialsMapFile} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), configFile) {
			t.Errorf("Load error = %v, want ErrNotExist naming %s", err, configFile)
		}
	})
	t.Run("no pad token", func(t *testing.T) {
		dir, _ := writeLearnedFolder(t, "!")
		writeFile(t, dir, configFile, `{"model_max_length": 77}`)
		writeFile(t, dir, specialsMapFile, `{"eos_token": "<|endoftext|>"}`)
		if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "pad_token") {
			t.Errorf("Load error = %v, want ErrFormat about pad_token", err)
		}
	})
}

func TestWriteFolderFiles(t *testing.T) {
	dir, merges := writeLearnedFolder(t, "!")
	data, err := os.ReadFile(filepath.Join(dir, mergesFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "#version: 0.2" || len(lines) != len(merges)+1 || lines[1] != merges[0].A+" "+merges[0].B {
		t.Errorf("merges.txt starts %q with %d lines, want the header and %d merges", lines[:2], len(lines), len(merges))
	}
	var config map[string]any
	data, err = os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &config); err != nil {
		t.Fatalf("%s: %v", configFile, err)
	}
	if config["model_max_length"] != 77.0 || config["do_lower_case"] != true || config["pad_token"] != "!" {
		t.Errorf("%s = %v, want model_max_length 77, do_lower_case, pad_token !", configFile, config)
	}
	var vocab map[string]int
	data, err = os.ReadFile(filepath.Join(dir, vocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &vocab); err != nil {
		t.Fatalf("%s: %v", vocabFile, err)
	}
	if want := VocabFromMerges(merges); len(vocab) != len(want) || vocab["<|endoftext|>"] != want["<|endoftext|>"] {
		t.Errorf("vocab.json has %d entries, want %d", len(vocab), len(want))
	}
}

func TestWriteFolderRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		merges []Merge
		pad    string
		target error
	}{
		{"blank symbol", []Merge{{"a", ""}}, "!", ErrFormat},
		{"space in symbol", []Merge{{"a b", "c"}}, "!", ErrFormat},
		{"unknown pad", []Merge{{"a", "b"}}, "<pad>", ErrVocab},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteFolder(t.TempDir(), tc.merges, tc.pad); !errors.Is(err, tc.target) {
				t.Errorf("WriteFolder error = %v, want %v", err, tc.target)
			}
		})
	}
}
