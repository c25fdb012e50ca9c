package clip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBPE(t *testing.T) {
	const file = "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\r\nth e</w>\n\n"
	want := []Merge{{"i", "n"}, {"t", "h"}, {"th", "e</w>"}}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", []byte(file)},
		{"gzip", gzipped(t, file)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadBPE(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatalf("ReadBPE: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ReadBPE = %q, want %q", got, want)
			}
		})
	}
}

func TestReadBPEStopsAtClipCount(t *testing.T) {
	var b strings.Builder
	b.WriteString("#version: 0.2\n")
	for i := range clipMerges + 10 {
		fmt.Fprintf(&b, "x%d y\n", i)
	}
	got, err := ReadBPE(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("ReadBPE: %v", err)
	}
	if len(got) != 48894 || got[len(got)-1] != (Merge{"x48893", "y"}) {
		t.Errorf("got %d merges ending %v, want 48894 ending {x48893 y}", len(got), got[len(got)-1])
	}
}

func TestReadBPEErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, wantMsg string }{
		{"empty", "", "empty file"},
		{"no header", "i n\nt h\n", "line 1"},
		{"three symbols", "#version: 0.2\ni n\na b c\n", "line 3"},
		{"one symbol", "#version: 0.2\nab\n", "line 2"},
		{"blank inside", "#version: 0.2\ni n\n\nt h\n", "line 3"},
		{"bad gzip", "\x1f\x8bnot gzip", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadBPE(strings.NewReader(tc.in))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("ReadBPE error = %v, want ErrFormat mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

func TestVocabFromMerges(t *testing.T) {
	vocab := VocabFromMerges([]Merge{{"i", "n"}, {"in", "g</w>"}, {"i", "n"}})
	for _, tc := range []struct {
		tok  string
		want int
	}{
		{"!", 0}, {"~", 93}, {"¡", 94}, {"®", 106}, {"ÿ", 187},
		{"Ā", 188}, // byte 0, the first shifted byte
		{"Ġ", 220}, // space
		{"!</w>", 256}, {"Ġ</w>", 476},
		{"in", 514}, // repeated merge: the last id wins
		{"ing</w>", 513},
		{"<|startoftext|>", 515}, {"<|endoftext|>", 516},
	} {
		if got, ok := vocab[tc.tok]; !ok || got != tc.want {
			t.Errorf("vocab[%q] = %d, %v; want %d", tc.tok, got, ok, tc.want)
		}
	}
	if len(vocab) != 516 {
		t.Errorf("len(vocab) = %d, want 516", len(vocab))
	}
}
