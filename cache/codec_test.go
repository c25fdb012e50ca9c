package cache

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func codecCases() []Entry {
	return []Entry{
		{},
		{
			Images:        [][]byte{[]byte("\x89PNG first"), []byte("\x89PNG second")},
			Seeds:         []uint64{1 << 52, 1<<52 + 1},
			ContentType:   "image/png",
			RevisedPrompt: "a lighthouse at dusk, ünïcode",
			Created:       time.Unix(1700000000, 123456789),
			Elapsed:       2500 * time.Millisecond,
		},
		{Images: [][]byte{{}}, Seeds: []uint64{0}, ContentType: "image/webp", Created: time.Unix(-5, 0)},
		{Seeds: []uint64{^uint64(0)}, Elapsed: -1},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for i, e := range codecCases() {
		t.Run(e.ContentType+"#"+string(rune('0'+i)), func(t *testing.T) {
			got, err := decodeEntry(encodeEntry(e))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	valid := encodeEntry(codecCases()[1])
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("xxxx\x01"), valid[5:]...)},
		{"future version", append([]byte("sdgc\x02"), valid[5:]...)},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"huge count", append([]byte(codecMagic), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)},
	}
	// Every strict prefix of a valid encoding is corrupt.
	for n := range len(valid) {
		if n%97 == 0 || n < 40 || n > len(valid)-20 {
			tests = append(tests, struct {
				name string
				in   []byte
			}{"truncated", valid[:n]})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeEntry(tt.in); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decodeEntry(%d bytes) err = %v, want ErrCorrupt", len(tt.in), err)
			}
		})
	}
}

// FuzzDecodeEntry: stored bytes never panic the decoder, and whatever
// decodes re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range codecCases() {
		f.Add(encodeEntry(e))
	}
	f.Add([]byte(codecMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again, err := decodeEntry(encodeEntry(e))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if diff := cmp.Diff(e, again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("re-encode changed the entry (-first +second):\n%s", diff)
		}
	})
}
