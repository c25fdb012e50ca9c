package synth

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded protobuf field: varints in v, bytes in b.
type field struct {
	num protowire.Number
	v   uint64
	b   []byte
}

func decodeFields(t *testing.T, msg []byte) []field {
	t.Helper()
	var out []field
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		f := field{num: num}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg)
			f.v = uint64(v)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		out = append(out, f)
	}
	return out
}

func only(t *testing.T, fields []field, num protowire.Number) []field {
	t.Helper()
	var out []field
	for _, f := range fields {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// TestModelHeader decodes a written model.onnx by hand: IR version,
// producer, opset, and an external tensor's reference.
func TestModelHeader(t *testing.T) {
	dir := writeTiny(t, Options{ExternalData: true})
	data, err := os.ReadFile(filepath.Join(dir, "vae_decoder", modelFile))
	if err != nil {
		t.Fatal(err)
	}
	top := decodeFields(t, data)
	if f := only(t, top, 1); len(f) != 1 || f[0].v != 8 {
		t.Errorf("ir_version %+v, want 8", f)
	}
	if f := only(t, top, 2); len(f) != 1 || string(f[0].b) != "sdgate-synth" {
		t.Errorf("producer_name %+v", f)
	}
	opsets := only(t, top, 8)
	if len(opsets) != 1 {
		t.Fatalf("%d opset imports, want 1", len(opsets))
	}
	op := decodeFields(t, opsets[0].b)
	if len(only(t, op, 1)) != 0 || len(only(t, op, 2)) != 1 || only(t, op, 2)[0].v != 17 {
		t.Errorf("opset import %+v, want default domain version 17", op)
	}

	graphs := only(t, top, 7)
	if len(graphs) != 1 {
		t.Fatalf("%d graphs", len(graphs))
	}
	var external int
	for _, init := range only(t, decodeFields(t, graphs[0].b), 5) {
		tf := decodeFields(t, init.b)
		if string(only(t, tf, 8)[0].b) != "post_quant_conv.weight" {
			continue
		}
		external++
		if loc := only(t, tf, 14); len(loc) != 1 || loc[0].v != 1 {
			t.Errorf("data_location %+v, want EXTERNAL", loc)
		}
		if len(only(t, tf, 9)) != 0 {
			t.Error("external tensor also has raw_data")
		}
		got := map[string]string{}
		for _, e := range only(t, tf, 13) {
			kv := decodeFields(t, e.b)
			got[string(kv[0].b)] = string(kv[1].b)
		}
		// The first parameter in graph order: 4x4x1x1 fp32 at offset 0.
		if got["location"] != dataFile || got["offset"] != "0" || got["length"] != "64" {
			t.Errorf("external_data %v", got)
		}
	}
	if external != 1 {
		t.Errorf("found post_quant_conv.weight %d times", external)
	}
}

func TestAttributeEncoding(t *testing.T) {
	cases := []struct {
		name  string
		attr  *attribute
		check func(t *testing.T, fs []field)
	}{
		{"float", attrF("epsilon", 1e-5), func(t *testing.T, fs []field) {
			if f := only(t, fs, 2); len(f) != 1 || math.Float32frombits(uint32(f[0].v)) != 1e-5 {
				t.Errorf("f %+v", f)
			}
		}},
		{"negative int", attrI("axis", -1), func(t *testing.T, fs []field) {
			if f := only(t, fs, 3); len(f) != 1 || int64(f[0].v) != -1 {
				t.Errorf("i %+v", f)
			}
		}},
		{"string", attrS("mode", "nearest"), func(t *testing.T, fs []field) {
			if f := only(t, fs, 4); len(f) != 1 || string(f[0].b) != "nearest" {
				t.Errorf("s %+v", f)
			}
		}},
		{"ints", attrIs("pads", 0, 0, 1, 1), func(t *testing.T, fs []field) {
			f := only(t, fs, 8)
			if len(f) != 4 || f[2].v != 1 || f[0].v != 0 {
				t.Errorf("ints %+v", f)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			ww := newWireWriter(&buf)
			tc.attr.emit(context.Background(), ww)
			if ww.err != nil || int64(buf.Len()) != tc.attr.size() {
				t.Fatalf("wrote %d bytes (err %v), size() %d", buf.Len(), ww.err, tc.attr.size())
			}
			fs := decodeFields(t, buf.Bytes())
			if string(only(t, fs, 1)[0].b) != tc.attr.name || attrKind(only(t, fs, 20)[0].v) != tc.attr.kind {
				t.Errorf("name/type %+v", fs)
			}
			tc.check(t, fs)
		})
	}
}

// liar announces one size and writes another.
type liar struct{}

func (liar) size() int64 { return 3 }

func (liar) emit(_ context.Context, ww *wireWriter) { ww.write([]byte{1, 2}) }

func TestSizeMismatchIsCaught(t *testing.T) {
	var buf bytes.Buffer
	ww := newWireWriter(&buf)
	ww.messageField(context.Background(), 1, liar{})
	if !errors.Is(ww.err, errEncoding) {
		t.Fatalf("err = %v, want errEncoding", ww.err)
	}
}

func TestRankZeroShapeIsDeclared(t *testing.T) {
	// A rank-0 input must carry an empty shape, not none: no shape means
	// unknown rank to ONNX Runtime.
	v := &valueInfo{name: "timestep", dtype: dtFloat16}
	var buf bytes.Buffer
	ww := newWireWriter(&buf)
	v.emit(context.Background(), ww)
	typ := decodeFields(t, only(t, decodeFields(t, buf.Bytes()), 2)[0].b)
	tensor := decodeFields(t, only(t, typ, 1)[0].b)
	shape := only(t, tensor, 2)
	if len(shape) != 1 || len(shape[0].b) != 0 {
		t.Errorf("shape fields %+v, want one empty shape", shape)
	}
}

func writeTiny(t *testing.T, opts Options) string {
	t.Helper()
	opts.Preset = "tiny"
	dir := filepath.Join(t.TempDir(), "model")
	if _, err := Write(context.Background(), dir, opts, nil); err != nil {
		t.Fatalf("Write(%+v): %v", opts, err)
	}
	return dir
}
