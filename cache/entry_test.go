package cache

import "testing"

func TestEntrySize(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want int64
	}{
		{"empty", Entry{}, entryOverhead},
		{"strings and seeds", Entry{ContentType: "image/png", RevisedPrompt: "abc", Seeds: []uint64{1, 2}}, entryOverhead + 9 + 3 + 16},
		{"images by capacity", Entry{Images: [][]byte{make([]byte, 10, 100), make([]byte, 5)}}, entryOverhead + 2*sliceHeader + 105},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Size(); got != tt.want {
				t.Errorf("Size = %d, want %d", got, tt.want)
			}
		})
	}
}
