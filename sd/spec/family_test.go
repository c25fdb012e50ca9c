package spec

import (
	"slices"
	"testing"
)

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		native int
		want   []Size
	}{
		// SDXL's own training buckets.
		{1024, []Size{{1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216}, {1344, 768}, {768, 1344}}},
		// SD 1.5 and SDXL-Turbo: the same aspects at 512.
		{512, []Size{{512, 512}, {576, 448}, {448, 576}, {608, 416}, {416, 608}, {672, 384}, {384, 672}}},
		// SD 2.x 768-v.
		{768, []Size{{768, 768}, {864, 672}, {672, 864}, {912, 624}, {624, 912}, {1008, 576}, {576, 1008}}},
	} {
		if got := Buckets(tc.native, tc.native); !slices.Equal(got, tc.want) {
			t.Errorf("Buckets(%d) = %v, want %v", tc.native, got, tc.want)
		}
	}
	if got := Buckets(768, 512); !slices.Equal(got, []Size{{768, 512}}) {
		t.Errorf("non-square native: %v", got)
	}
	if Buckets(0, 0) != nil {
		t.Error("no native size gave buckets")
	}
}

func TestNearestBucket(t *testing.T) {
	xl := Buckets(1024, 1024)
	for _, tc := range []struct {
		w, h int
		want Size
	}{
		{1024, 1024, Size{1024, 1024}},
		{256, 256, Size{1024, 1024}},
		{1792, 1024, Size{1344, 768}}, // 1.75: exactly SDXL's widest bucket
		{1024, 1792, Size{768, 1344}},
		{1536, 1024, Size{1216, 832}}, // 1.5 is nearer 1.46 than 1.29 or 1.75
		{1024, 1536, Size{832, 1216}},
		{4096, 8, Size{1344, 768}}, // beyond the widest: the widest
	} {
		got, ok := NearestBucket(xl, tc.w, tc.h)
		if !ok || got != tc.want {
			t.Errorf("NearestBucket(%dx%d) = %v, want %v", tc.w, tc.h, got, tc.want)
		}
	}
	if _, ok := NearestBucket(nil, 1, 1); ok {
		t.Error("no buckets gave one")
	}
	if _, ok := NearestBucket(xl, 0, 5); ok {
		t.Error("a zero side gave a bucket")
	}
}
