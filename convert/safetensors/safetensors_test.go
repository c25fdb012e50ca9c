package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sdgate/sdgate/sd/half"
)

// rawFile assembles a file from a header string and n data bytes.
func rawFile(header string, n int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, n))
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	a := []float32{1, -2, 3.5, 0.25, 1e-3, 65504}
	bvals := []float32{0.5, -0.75}
	var buf bytes.Buffer
	err := Write(&buf, map[string]string{"format": "pt"}, []Entry{
		Float32Entry("a", F32, []int64{2, 3}, a),
		Float32Entry("b.h", F16, []int64{2}, bvals),
		Float32Entry("c", BF16, []int64{2}, bvals),
		Float32Entry("scalar", F32, nil, []float32{7}),
		Float32Entry("empty", F32, []int64{0, 4}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if hl := binary.LittleEndian.Uint64(buf.Bytes()); hl%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hl)
	}
	f, err := New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"format": "pt"}, f.Metadata()); diff != "" {
		t.Error(diff)
	}
	var names []string
	for _, ti := range f.Tensors() {
		names = append(names, ti.Name)
	}
	if diff := cmp.Diff([]string{"a", "b.h", "c", "empty", "scalar"}, names); diff != "" {
		t.Error(diff)
	}
	for name, want := range map[string][]float32{"a": a, "b.h": bvals, "c": bvals, "scalar": {7}, "empty": {}} {
		got, err := f.Float32(name)
		if err != nil {
			t.Fatal(name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %s", name, diff)
		}
	}
	info, _ := f.Info("a")
	if info.Numel() != 6 || info.Bytes() != 24 || !cmp.Equal(info.Shape, []int64{2, 3}) {
		t.Errorf("info %+v", info)
	}
	sec, err := f.Section("b.h")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(sec)
	if len(raw) != 4 {
		t.Errorf("section of %d bytes, want 4", len(raw))
	}
	if _, err := f.Float32("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestBF16Rounding(t *testing.T) {
	// 1 + 2^-8 is halfway between two bf16 values: ties go to even (1).
	got, _ := EncodeFloat32([]float32{1 + 1.0/256, 1 + 3.0/256}, BF16)
	want := []byte{0x80, 0x3f, 0x82, 0x3f}
	if !bytes.Equal(got, want) {
		t.Errorf("bf16 % x, want % x", got, want)
	}
}

func TestWriteChecksLength(t *testing.T) {
	err := Write(io.Discard, nil, []Entry{{Name: "x", DType: F32, Shape: []int64{2},
		Data: func(w io.Writer) error { _, err := w.Write(make([]byte, 4)); return err }}})
	if err == nil || !strings.Contains(err.Error(), "wrote 4 bytes") {
		t.Errorf("short data: %v", err)
	}
	if err := Write(io.Discard, nil, []Entry{Float32Entry("x", F32, nil, []float32{1}), Float32Entry("x", F32, nil, []float32{1})}); err == nil {
		t.Error("duplicate name accepted")
	}
}

func TestBadHeaders(t *testing.T) {
	cases := []struct {
		name, header string
		data         int
		want         string
	}{
		{"not json", "hello", 0, "not a JSON object"},
		{"trailing", `{} {}`, 0, "data after"},
		{"past end", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4, "past the data"},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, "overlaps"},
		{"hole", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, "hole"},
		{"tail", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8, "after the last"},
		{"dtype size", `{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, 8, "needs 4 bytes"},
		{"unknown dtype", `{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16, "unknown dtype"},
		{"negative dim", `{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4, "negative"},
		{"overflow", `{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0, "overflows"},
		{"wrap", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775804,-9223372036854775808]}}`, 0, "data_offsets"},
		{"offsets", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4, "needs 2 numbers"},
		{"reversed", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4, "bad data_offsets"},
		{"no shape", `{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4, "no shape"},
		{"metadata", `{"__metadata__":{"a":1}}`, 0, "__metadata__"},
		{"not utf8", "{\"\xff\":1}", 0, "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := rawFile(c.header, c.data)
			_, err := New(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want ErrFormat with %q", err, c.want)
			}
		})
	}
}

func TestBadPrefix(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	for name, b := range map[string][]byte{"short": {1, 2}, "huge header": huge, "empty": {}} {
		if _, err := New(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPickleRefused(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"model.ckpt":         rawFile("{}", 0),
		"model.bin":          rawFile("{}", 0),
		"sneaky.safetensors": append([]byte{0x80, 0x02, 'c', 'o', 's'}, make([]byte, 20)...),
		"zip.safetensors":    append([]byte("PK\x03\x04"), make([]byte, 20)...),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if !errors.Is(err, ErrPickle) || !strings.Contains(err.Error(), "arbitrary code") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(fh, nil, []Entry{Float32Entry("w", F16, []int64{3}, []float32{1, 2, 3})}); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("w")
	if err != nil || !cmp.Equal(got, []float32{1, 2, 3}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrFormat) {
		t.Errorf("folder: %v", err)
	}
}

// FuzzParse: no input panics, and whatever parses has tensors that lie
// inside the data and read back.
func FuzzParse(f *testing.F) {
	var good bytes.Buffer
	Write(&good, map[string]string{"k": "v"}, []Entry{
		Float32Entry("a", F32, []int64{2}, []float32{1, 2}),
		Float32Entry("b", F16, []int64{1, 1}, []float32{3}),
	})
	f.Add(good.Bytes())
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, 2))
	f.Add([]byte{0x80, 0x04, 0x95})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := New(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, ti := range sf.Tensors() {
			if ti.Begin < 0 || ti.End > int64(len(b))-sf.dataStart || ti.Begin > ti.End {
				t.Fatalf("tensor %q outside the data: %+v", ti.Name, ti)
			}
			if ti.DType == F32 || ti.DType == F16 || ti.DType == BF16 || ti.DType == F64 {
				if ti.Numel() < 1<<20 {
					if _, err := sf.Float32(ti.Name); err != nil {
						t.Fatalf("read %q: %v", ti.Name, err)
					}
				}
			}
		}
	})
}

// TestF16AllPatterns: the lookup decode agrees with sd/half on every
// float16 bit pattern, NaNs and subnormals included.
func TestF16AllPatterns(t *testing.T) {
	raw := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(i))
	}
	var buf bytes.Buffer
	err := Write(&buf, nil, []Entry{{Name: "all", DType: F16, Shape: []int64{1 << 16},
		Data: func(w io.Writer) error { _, err := w.Write(raw); return err }}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Float32("all")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if want := half.Float16(uint16(i)).Float32(); math.Float32bits(v) != math.Float32bits(want) {
			t.Fatalf("pattern %#04x: %v, want %v", i, v, want)
		}
	}
}
