package convert_test

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

type storedTensor struct {
	info safetensors.Info
	vals []float32
}

// FuzzSDXLShapes: an SDXL checkpoint with one tensor reshaped, dropped or
// retyped is either refused with an error or read within bounds; it never
// panics, and every tensor it hands out has the graph's size.
func FuzzSDXLShapes(f *testing.F) {
	base, err := safetensors.Open(writeLDM(f, tinyXL, safetensors.F32))
	if err != nil {
		f.Fatal(err)
	}
	var stored []storedTensor
	for _, info := range base.Tensors() {
		vals, err := base.Float32(info.Name)
		if err != nil {
			f.Fatal(err)
		}
		stored = append(stored, storedTensor{info, vals})
	}
	base.Close()
	params, err := synth.Params(tinyXL)
	if err != nil {
		f.Fatal(err)
	}
	index := func(key string) uint16 {
		i := slices.IndexFunc(stored, func(s storedTensor) bool { return s.info.Name == key })
		if i < 0 {
			f.Fatalf("no %s", key)
		}
		return uint16(i)
	}
	// idx, rank (0: drop the tensor), four dimensions, dtype
	f.Add(index("conditioner.embedders.1.model.text_projection"), uint8(1), uint8(48), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add(index("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"), uint8(2), uint8(47), uint8(48), uint8(0), uint8(0), uint8(0))
	f.Add(index("conditioner.embedders.1.model.token_embedding.weight"), uint8(2), uint8(7), uint8(48), uint8(0), uint8(0), uint8(1))
	f.Add(index("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add(index("model.diffusion_model.label_emb.0.0.weight"), uint8(2), uint8(128), uint8(0), uint8(0), uint8(0), uint8(2))
	f.Add(index("model.diffusion_model.input_blocks.0.0.weight"), uint8(4), uint8(32), uint8(9), uint8(3), uint8(3), uint8(0))
	f.Add(index("model.diffusion_model.input_blocks.2.0.op.weight"), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Add(index("first_stage_model.decoder.mid.attn_1.q.weight"), uint8(3), uint8(32), uint8(32), uint8(1), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, idx uint16, rank, d0, d1, d2, d3, dtype uint8) {
		victim := int(idx) % len(stored)
		shape := []int64{int64(d0), int64(d1), int64(d2), int64(d3)}[:min(int(rank), 4)]
		numel := int64(1)
		for _, d := range shape {
			numel *= d
		}
		dt := []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.I32}[dtype%4]
		var entries []safetensors.Entry
		for i, s := range stored {
			switch {
			case i != victim:
				entries = append(entries, safetensors.Float32Entry(s.info.Name, safetensors.F32, s.info.Shape, s.vals))
			case rank > 0:
				vals := make([]float32, numel)
				if dt == safetensors.I32 {
					entries = append(entries, safetensors.Entry{Name: s.info.Name, DType: dt, Shape: shape, Data: func(w io.Writer) error {
						_, err := w.Write(make([]byte, 4*numel))
						return err
					}})
					continue
				}
				entries = append(entries, safetensors.Float32Entry(s.info.Name, dt, shape, vals))
			}
		}
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, nil, entries); err != nil {
			return // the writer refuses it: nothing to read
		}
		sf, err := safetensors.New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			return
		}
		ck, err := convert.NewCheckpoint(sf, convert.Options{})
		if err != nil {
			return // refused: fine, as long as it did not panic
		}
		for _, p := range params {
			if ck.Check(p.Net, p.Name, p.Shape) != nil {
				continue
			}
			vals, err := ck.Float32(p.Net, p.Name, p.Shape)
			want := int64(1)
			for _, d := range p.Shape {
				want *= d
			}
			if err == nil && int64(len(vals)) != want {
				t.Fatalf("%s %s: %d values for %v", p.Net, p.Name, len(vals), p.Shape)
			}
		}
	})
}
