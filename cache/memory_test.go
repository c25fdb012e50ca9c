package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// sizedEntry is an entry whose memorySize is exactly n bytes (n must cover
// the fixed overheads of one image).
func sizedEntry(n int64) Entry {
	fixed := int64(entryOverhead+memoryItemOverhead+sliceHeader) + int64(len("image/png"))
	return Entry{Images: [][]byte{make([]byte, n-fixed)}, ContentType: "image/png"}
}

func keyN(i int) Key { return KeyOf(Params{Prompt: fmt.Sprint("prompt ", i), HasSeed: true}) }

func TestNewMemoryRejectsBadBound(t *testing.T) {
	for _, n := range []int64{0, -1} {
		if _, err := NewMemory(n); !errors.Is(err, ErrBadOptions) {
			t.Errorf("NewMemory(%d) err = %v, want ErrBadOptions", n, err)
		}
	}
}

func TestMemoryByteBoundAndEviction(t *testing.T) {
	ctx := context.Background()
	const unit = 10_000
	tests := []struct {
		name    string
		bound   int64
		ops     func(t *testing.T, m *Memory)
		present []int // keys expected stored afterwards
		absent  []int
		want    StoreStats
	}{
		{
			name:  "fills up to the bound exactly",
			bound: 3 * unit,
			ops: func(t *testing.T, m *Memory) {
				for i := range 3 {
					mustAdd(t, m, keyN(i), sizedEntry(unit))
				}
			},
			present: []int{0, 1, 2},
			want:    StoreStats{Entries: 3, Bytes: 3 * unit, MaxBytes: 3 * unit},
		},
		{
			name:  "oldest goes first",
			bound: 3 * unit,
			ops: func(t *testing.T, m *Memory) {
				for i := range 4 {
					mustAdd(t, m, keyN(i), sizedEntry(unit))
				}
			},
			present: []int{1, 2, 3},
			absent:  []int{0},
			want:    StoreStats{Entries: 3, Bytes: 3 * unit, MaxBytes: 3 * unit, Evictions: 1},
		},
		{
			name:  "a get makes an entry recent",
			bound: 3 * unit,
			ops: func(t *testing.T, m *Memory) {
				for i := range 3 {
					mustAdd(t, m, keyN(i), sizedEntry(unit))
				}
				if _, ok, _ := m.Get(ctx, keyN(0)); !ok {
					t.Fatal("entry 0 missing before eviction")
				}
				mustAdd(t, m, keyN(3), sizedEntry(unit))
			},
			present: []int{0, 2, 3},
			absent:  []int{1},
			want:    StoreStats{Entries: 3, Bytes: 3 * unit, MaxBytes: 3 * unit, Evictions: 1},
		},
		{
			name:  "a big entry evicts as many as it needs",
			bound: 4 * unit,
			ops: func(t *testing.T, m *Memory) {
				for i := range 4 {
					mustAdd(t, m, keyN(i), sizedEntry(unit))
				}
				mustAdd(t, m, keyN(9), sizedEntry(3*unit))
			},
			present: []int{3, 9},
			absent:  []int{0, 1, 2},
			want:    StoreStats{Entries: 2, Bytes: 4 * unit, MaxBytes: 4 * unit, Evictions: 3},
		},
		{
			name:  "an entry over the bound is not stored and evicts nothing",
			bound: 2 * unit,
			ops: func(t *testing.T, m *Memory) {
				mustAdd(t, m, keyN(0), sizedEntry(unit))
				mustAdd(t, m, keyN(1), sizedEntry(2*unit+1))
			},
			present: []int{0},
			absent:  []int{1},
			want:    StoreStats{Entries: 1, Bytes: unit, MaxBytes: 2 * unit, Rejected: 1},
		},
		{
			name:  "replacing a key counts its bytes once",
			bound: 3 * unit,
			ops: func(t *testing.T, m *Memory) {
				mustAdd(t, m, keyN(0), sizedEntry(unit))
				mustAdd(t, m, keyN(1), sizedEntry(unit))
				mustAdd(t, m, keyN(0), sizedEntry(2*unit))
			},
			present: []int{0, 1},
			want:    StoreStats{Entries: 2, Bytes: 3 * unit, MaxBytes: 3 * unit},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMemory(tt.bound)
			if err != nil {
				t.Fatal(err)
			}
			tt.ops(t, m)
			if got := m.Stats(); got != tt.want {
				t.Errorf("Stats = %+v, want %+v", got, tt.want)
			}
			for _, i := range tt.present {
				if _, ok, _ := m.Get(ctx, keyN(i)); !ok {
					t.Errorf("entry %d missing", i)
				}
			}
			for _, i := range tt.absent {
				if _, ok, _ := m.Get(ctx, keyN(i)); ok {
					t.Errorf("entry %d still stored", i)
				}
			}
		})
	}
}

func mustAdd(t *testing.T, s Store, k Key, e Entry) {
	t.Helper()
	if err := s.Add(context.Background(), k, e); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryReturnsWhatWasAdded(t *testing.T) {
	m, err := NewMemory(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Images: [][]byte{[]byte("png1"), []byte("png2")}, Seeds: []uint64{7, 8}, ContentType: "image/png", RevisedPrompt: "p"}
	mustAdd(t, m, keyN(1), want)
	got, ok, err := m.Get(context.Background(), keyN(1))
	if err != nil || !ok {
		t.Fatalf("Get = ok %v err %v", ok, err)
	}
	if string(got.Images[1]) != "png2" || got.Seeds[1] != 8 || got.ContentType != "image/png" || got.RevisedPrompt != "p" {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	if _, ok, _ := m.Get(context.Background(), keyN(2)); ok {
		t.Error("Get of an absent key hit")
	}
}

// TestMemoryConcurrent hammers one small store from many goroutines; -race
// checks the locking, and the byte total must stay within the bound.
func TestMemoryConcurrent(t *testing.T) {
	const bound = 50_000
	m, err := NewMemory(bound)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := keyN((g*200 + i) % 37)
				if i%3 == 0 {
					if err := m.Add(context.Background(), k, sizedEntry(int64(1000+i*10))); err != nil {
						t.Error(err)
						return
					}
				} else if _, _, err := m.Get(context.Background(), k); err != nil {
					t.Error(err)
					return
				}
				if s := m.Stats(); s.Bytes > bound || s.Bytes < 0 {
					t.Errorf("bytes %d outside 0..%d", s.Bytes, bound)
					return
				}
			}
		})
	}
	wg.Wait()
	s := m.Stats()
	var sum int64
	for i := range 37 {
		if e, ok := m.lru.Peek(keyN(i)); ok {
			sum += memorySize(e)
		}
	}
	if sum != s.Bytes {
		t.Errorf("bytes counted %d, entries hold %d", s.Bytes, sum)
	}
}
