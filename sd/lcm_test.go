package sd

import (
	"math"
	"testing"
)

// guidanceEmbedding pins diffusers' get_guidance_scale_embedding: w =
// (g-1)*1000, frequencies exp(-i*ln(10000)/(half-1)), sines then cosines.
func TestGuidanceEmbedding(t *testing.T) {
	const dim, batch = 256, 3
	emb := guidanceEmbedding(8.5, dim, batch)
	if len(emb) != dim*batch {
		t.Fatalf("%d values, want %d", len(emb), dim*batch)
	}
	w := 7500.0
	for _, i := range []int{0, 1, 64, 127} {
		freq := math.Exp(-float64(i) * math.Log(10000) / 127)
		sin, cos := math.Sin(w*freq), math.Cos(w*freq)
		if math.Abs(float64(emb[i])-sin) > 2e-3 || math.Abs(float64(emb[128+i])-cos) > 2e-3 {
			t.Errorf("i=%d: sin %g cos %g, want %g %g", i, emb[i], emb[128+i], sin, cos)
		}
	}
	for b := 1; b < batch; b++ {
		for k := range dim {
			if emb[b*dim+k] != emb[k] {
				t.Fatalf("row %d differs from row 0 at %d", b, k)
			}
		}
	}
	// Guidance 1 embeds w = 0: all sines 0, all cosines 1.
	one := guidanceEmbedding(1, 8, 1)
	for k, v := range one {
		want := float32(0)
		if k >= 4 {
			want = 1
		}
		if v != want {
			t.Errorf("guidance 1: value %d = %g, want %g", k, v, want)
		}
	}
	if guidanceEmbedding(7.5, 0, 2) != nil {
		t.Error("a UNet without timestep_cond got an embedding")
	}
}
