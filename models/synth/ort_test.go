//go:build cgo

package synth

import (
	"path/filepath"

	"github.com/sdgate/sdgate/sd"

	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sdgate/sdgate/sd/half"
)

// ONNX Runtime checks what Write wrote: sessions open, inputs and outputs
// are what the contract says, and the graphs run to finite values.

// ortProblem is why ONNX Runtime is unavailable, "" when it is ready; set
// once by TestMain before any test runs.
var ortProblem string

func TestMain(m *testing.M) {
	ortProblem = initORT()
	code := m.Run()
	if ort.IsInitialized() {
		_ = ort.DestroyEnvironment() // the process ends either way
	}
	os.Exit(code)
}

// initORT loads the library tests use everywhere (sd.FindLibrary over
// lib/ and the usual places); it returns "" when ready, or why not.
func initORT() string {
	wd, err := os.Getwd()
	if err != nil {
		return err.Error()
	}
	lib, err := sd.FindLibrary("", sd.DefaultLibraryDirs("", wd))
	if err != nil {
		return fmt.Sprintf("%v; run `make deps`", err)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Sprintf("ONNX Runtime init: %v", err)
	}
	return ""
}

func needORT(t testing.TB) {
	t.Helper()
	if ortProblem != "" {
		t.Skip("skipping ONNX Runtime check: " + ortProblem)
	}
}

// ioWant is one input or output as the contract states it.
type ioWant struct {
	name  string
	dtype ort.TensorElementDataType
	rank  int
}

// checkIO compares a session's declared inputs or outputs with want, in order.
func checkIO(t *testing.T, what string, got []ort.InputOutputInfo, want []ioWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d (%v), want %d", what, len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.DataType != w.dtype || len(g.Dimensions) != w.rank {
			t.Errorf("%s %d: got %s (rank %d), want %q %s rank %d",
				what, i, g.String(), len(g.Dimensions), w.name, w.dtype, w.rank)
		}
	}
}

func ortType(dt dataType) ort.TensorElementDataType {
	switch dt {
	case dtFloat16:
		return ort.TensorElementDataTypeFloat16
	case dtInt32:
		return ort.TensorElementDataTypeInt32
	case dtInt64:
		return ort.TensorElementDataTypeInt64
	default:
		return ort.TensorElementDataTypeFloat
	}
}

// tensorIn builds an input of element type dt from float values (ints are
// truncated). onnxruntime_go has no float16 type, so every tensor is a
// CustomDataTensor of little-endian bytes.
func tensorIn(t *testing.T, dt dataType, shape []int64, vals []float64) ort.Value {
	t.Helper()
	raw := make([]byte, int(dt.elemSize())*len(vals))
	for i, v := range vals {
		switch dt {
		case dtFloat16:
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(half.FromFloat32(float32(v))))
		case dtFloat:
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(v)))
		case dtInt32:
			binary.LittleEndian.PutUint32(raw[4*i:], uint32(int32(v)))
		case dtInt64:
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(v)))
		}
	}
	tn, err := ort.NewCustomDataTensor(ort.NewShape(shape...), raw, ortType(dt))
	if err != nil {
		t.Fatalf("input tensor %v %v: %v", dt, shape, err)
	}
	t.Cleanup(func() { _ = tn.Destroy() })
	return tn
}

// tensorOut pre-allocates an output: the binding cannot let ORT allocate
// float16 outputs (it copies elements as if they were bytes).
func tensorOut(t *testing.T, dt dataType, shape ...int64) *ort.CustomDataTensor {
	t.Helper()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	tn, err := ort.NewCustomDataTensor(ort.NewShape(shape...), make([]byte, n*dt.elemSize()), ortType(dt))
	if err != nil {
		t.Fatalf("output tensor %v %v: %v", dt, shape, err)
	}
	t.Cleanup(func() { _ = tn.Destroy() })
	return tn
}

// floatsOut decodes a float32 or float16 output and fails on NaN or Inf.
func floatsOut(t *testing.T, name string, dt dataType, tn *ort.CustomDataTensor) []float64 {
	t.Helper()
	raw := tn.GetData()
	vals := make([]float64, len(raw)/int(dt.elemSize()))
	for i := range vals {
		if dt == dtFloat16 {
			vals[i] = float64(half.Float16(binary.LittleEndian.Uint16(raw[2*i:])).Float32())
		} else {
			vals[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		if math.IsNaN(vals[i]) || math.IsInf(vals[i], 0) {
			t.Fatalf("%s: element %d is %v", name, i, vals[i])
		}
	}
	return vals
}

// session opens path for the named inputs and outputs.
func session(t *testing.T, path string, inputs, outputs []string) *ort.DynamicAdvancedSession {
	t.Helper()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(2); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		t.Fatalf("session %s: %v", path, err)
	}
	t.Cleanup(func() { _ = s.Destroy() })
	return s
}

func ioInfo(t *testing.T, path string) (ins, outs []ort.InputOutputInfo) {
	t.Helper()
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		t.Fatalf("io info %s: %v", path, err)
	}
	return ins, outs
}

// seq returns n values from a fixed, smooth, sign-changing pattern.
func seq(n int64, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * math.Sin(float64(i)*0.37+0.1)
	}
	return v
}

// repoRoot is the folder holding go.mod (../shared sits beside it).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}
