package spec

import "testing"

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
