package rng

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// torchCase is one entry of ../shared/rng/torch_randn_cpu.json: values of
// torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).
type torchCase struct {
	Seed  uint64    `json:"seed"`
	Shape []int     `json:"shape"`
	First []float64 `json:"first"` // first (up to) 32 values, row-major
	Last  []float64 `json:"last"`  // last (up to) 8 values
	Sum   float64   `json:"sum"`   // float64 sum of all values
	Count int       `json:"count"`
}

func (c torchCase) name() string { return fmt.Sprintf("seed=%d/shape=%v", c.Seed, c.Shape) }

// loadTorchCases reads the oracle from ../shared beside the repository root,
// skipping the test when it is not there.
func loadTorchCases(t *testing.T) []torchCase {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "..", "shared", "rng", "torch_randn_cpu.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("torch oracle not found at %s (needs the shared/ folder beside the repository)", path)
	}
	if err != nil {
		t.Fatalf("read oracle: %v", err)
	}
	var oracle struct {
		Cases []torchCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &oracle); err != nil {
		t.Fatalf("decode oracle: %v", err)
	}
	if len(oracle.Cases) == 0 {
		t.Fatal("oracle has no cases")
	}
	return oracle.Cases
}

// findTorchCase returns the oracle case for seed and element count.
func findTorchCase(t *testing.T, cases []torchCase, seed uint64, count int) torchCase {
	t.Helper()
	for _, c := range cases {
		if c.Seed == seed && c.Count == count {
			return c
		}
	}
	t.Fatalf("oracle has no case with seed %d and %d elements", seed, count)
	return torchCase{}
}

// repoRoot is the nearest directory above the test's working directory that
// holds go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// ulpDistance counts float32 steps between two finite values of equal sign.
func ulpDistance(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		return -d
	}
	return d
}

// checkValues compares got against oracle values to the float32 bit.
func checkValues(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i, w := range want {
		if g, w32 := got[i], float32(w); math.Float32bits(g) != math.Float32bits(w32) {
			t.Errorf("%s[%d] = %.9g, want %.9g (%d ulp apart)", what, i, g, w32, ulpDistance(g, w32))
		}
	}
}

func sum64(values []float32) float64 {
	var s float64
	for _, v := range values {
		s += float64(v)
	}
	return s
}

func TestRandnMatchesTorch(t *testing.T) {
	for _, c := range loadTorchCases(t) {
		t.Run(c.name(), func(t *testing.T) {
			count := 1
			for _, d := range c.Shape {
				count *= d
			}
			if count != c.Count {
				t.Fatalf("oracle shape %v has %d elements, count says %d", c.Shape, count, c.Count)
			}
			got := make([]float32, count)
			New(c.Seed).Randn(got)

			checkValues(t, "first", got[:len(c.First)], c.First)
			checkValues(t, "last", got[count-len(c.Last):], c.Last)
			// The sum covers the values the file does not list; float64
			// summation order changes it by far less than this bound.
			if s := sum64(got); math.Abs(s-c.Sum) > 1e-9*math.Max(1, math.Abs(c.Sum)) {
				t.Errorf("sum = %.12g, want %.12g", s, c.Sum)
			}
		})
	}
}

// The vectorised path turns uniforms u[j], u[j+8] into r*cos, r*sin with
// r = sqrt(-2 ln(1-u[j])) and angle 2*pi*u[j+8]; inverting that on the oracle's
// first 32 values (two whole blocks) recovers torch.rand's first 32 values.
func TestUniformMatchesTorchViaBoxMuller(t *testing.T) {
	for _, c := range loadTorchCases(t) {
		if c.Count < 32 || c.Count%blockSize != 0 || len(c.First) < 32 {
			continue // needs two whole, untouched blocks
		}
		t.Run(c.name(), func(t *testing.T) {
			want := make([]float64, 32)
			for b := 0; b < 32; b += blockSize {
				for j := range blockSize / 2 {
					cos, sin := c.First[b+j], c.First[b+j+8]
					want[b+j] = -math.Expm1(-(cos*cos + sin*sin) / 2)
					angle := math.Atan2(sin, cos) / (2 * math.Pi)
					if angle < 0 {
						angle++
					}
					want[b+j+8] = angle
				}
			}
			got := make([]float32, 32)
			New(c.Seed).Uniform(got)
			for i := range got {
				// Uniforms are multiples of 2^-24 (6e-8); a wrong draw is
				// off by far more than the inversion's float32 noise. The
				// angle is circular: 0.9999999 and 0 are neighbours.
				diff := math.Abs(float64(got[i]) - want[i])
				diff = math.Min(diff, 1-diff)
				if diff > 1e-6 {
					t.Errorf("uniform[%d] = %.9g, Box-Muller inverse of oracle gives %.9g", i, got[i], want[i])
				}
			}
		})
	}
}
