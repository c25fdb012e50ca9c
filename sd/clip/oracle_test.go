package clip

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type referenceEncoding struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func readReferenceEncodings(t *testing.T) []referenceEncoding {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedClipDir(t), "reference_encodings.jsonl"))
	if err != nil {
		t.Skipf("skipping: reference encodings not available (%v)", err)
	}
	defer f.Close()
	var refs []referenceEncoding
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ref referenceEncoding
		if err := json.Unmarshal(sc.Bytes(), &ref); err != nil {
			t.Fatalf("reference_encodings.jsonl: %v", err)
		}
		refs = append(refs, ref)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(refs) == 0 {
		t.Fatal("reference_encodings.jsonl holds no encodings")
	}
	return refs
}

// TestReferenceEncodings reproduces every id sequence of the reference
// algorithm, from a tokenizer built in memory and from one written to a
// folder and loaded back.
func TestReferenceEncodings(t *testing.T) {
	refs := readReferenceEncodings(t)
	merges := clipMergesFromShared(t)
	inMemory, err := New(VocabFromMerges(merges), merges, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	dir := t.TempDir()
	if err := WriteFolder(dir, merges, "<|endoftext|>"); err != nil {
		t.Fatalf("WriteFolder: %v", err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for name, tok := range map[string]*Tokenizer{"in memory": inMemory, "loaded": loaded} {
		t.Run(name, func(t *testing.T) {
			for _, ref := range refs {
				if got := tok.Encode(ref.Text); !slices.Equal(got, ref.IDs) {
					t.Errorf("Encode(%.50q)\n got %v\nwant %v", ref.Text, got, ref.IDs)
				}
			}
		})
	}
}

func TestClipVocabLayout(t *testing.T) {
	merges := clipMergesFromShared(t)
	if len(merges) != 48894 {
		t.Fatalf("ReadBPE returned %d merges, want 48894", len(merges))
	}
	vocab := VocabFromMerges(merges)
	for tok, want := range map[string]int{
		"!": 0, "!</w>": 256, "a</w>": 320, "in": 512,
		"<|startoftext|>": 49406, "<|endoftext|>": 49407,
	} {
		if got, ok := vocab[tok]; !ok || got != want {
			t.Errorf("vocab[%q] = %d, %v; want %d", tok, got, ok, want)
		}
	}
	if len(vocab) != 49408 {
		t.Errorf("len(vocab) = %d, want 49408", len(vocab))
	}
}
