package spec

import (
	"slices"
	"testing"
)

func TestRandomSeedLeavesRoomForEveryImage(t *testing.T) {
	seen := map[uint64]bool{}
	for range 1000 {
		s := RandomSeed()
		if s+MaxImages-1 > MaxSeed {
			t.Fatalf("seed %d: seed+%d passes MaxSeed", s, MaxImages-1)
		}
		seen[s] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 draws gave only %d distinct seeds", len(seen))
	}
}

func TestPartialSteps(t *testing.T) {
	for _, c := range []struct {
		n, total int
		want     []int
	}{
		{1, 20, []int{10}}, {2, 20, []int{6, 13}}, {3, 20, []int{5, 10, 15}},
		{3, 4, []int{1, 2, 3}}, {3, 2, []int{1}}, {1, 1, nil}, {0, 20, nil}, {2, 3, []int{1, 2}},
	} {
		if got := PartialSteps(c.n, c.total); !slices.Equal(got, c.want) {
			t.Errorf("PartialSteps(%d, %d) = %v, want %v", c.n, c.total, got, c.want)
		}
	}
}
