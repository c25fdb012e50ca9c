package lora

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/internal/parallel"
)

// Target is a weight a LoRA may change, as the caller holds it.
type Target struct {
	Net  string // "unet", "text_encoder" or "text_encoder_2"
	Name string // state-dict name of the weight: down_blocks.0.attentions.0.proj_in.weight
	// Shape is torch's: [out, in] or [out, in, kh, kw].
	Shape []int64
	// Transposed: Data holds [in, out], as ONNX MatMul weights are stored,
	// instead of torch's [out, in] (2-D weights only).
	Transposed bool
	// Data is changed in place. Callers that must keep the base weights
	// pass a copy.
	Data []float32
}

// Scaled is a LoRA with the strength it is applied at.
type Scaled struct {
	LoRA  *LoRA
	Scale float32
}

// Report says what a merge did.
type Report struct {
	Merged    int      // modules applied
	Unmatched []string // module keys that matched no target (non-strict merges only)
}

// Merge adds every LoRA's scale * (alpha/rank) * up @ down to its target,
// in the order given (LoRAs stack). Modules are matched to targets by
// network and diffusers module path (kohya's underscored form included;
// for the UNet also the LDM path kohya's SDXL files use, numbered from
// the UNet targets given).
// With strict, a module matching no target is an error and nothing is
// changed; otherwise it is listed in the report. A module whose shapes do
// not fit its target is always an error, and also changes nothing.
func Merge(targets []*Target, strict bool, loras ...Scaled) (Report, error) {
	jobs, rep, err := resolve(targets, strict, loras)
	if err != nil {
		return Report{}, err
	}
	for _, j := range jobs {
		j.apply(j.t.Data)
	}
	return rep, nil
}

// Plan is a resolved merge for callers that decode a weight only when a
// LoRA adapts it (an ONNX model's initializers): which targets change, and
// the deltas to add to each.
type Plan struct {
	order []*Target
	jobs  map[*Target][]job
}

// Resolve matches loras to targets as Merge does, changing nothing; the
// targets' Data may be nil.
func Resolve(targets []*Target, strict bool, loras ...Scaled) (*Plan, Report, error) {
	jobs, rep, err := resolve(targets, strict, loras)
	if err != nil {
		return nil, Report{}, err
	}
	p := &Plan{jobs: map[*Target][]job{}}
	for _, j := range jobs {
		if p.jobs[j.t] == nil {
			p.order = append(p.order, j.t)
		}
		p.jobs[j.t] = append(p.jobs[j.t], j)
	}
	return p, rep, nil
}

// Targets are the targets some module adapts, in the order first adapted.
func (p *Plan) Targets() []*Target { return slices.Clone(p.order) }

// Apply adds t's deltas to data, laid out as t says (Transposed or not).
func (p *Plan) Apply(t *Target, data []float32) error {
	if int64(len(data)) != numel(t.Shape) {
		return fmt.Errorf("%w: %s %q: %d values for shape %v", ErrShape, t.Net, t.Name, len(data), t.Shape)
	}
	for _, j := range p.jobs[t] {
		j.apply(data)
	}
	return nil
}

// job is one module to add to one target.
type job struct {
	m     *Module
	t     *Target
	scale float32
}

func (j job) apply(data []float32) {
	if j.scale != 0 {
		t := *j.t
		t.Data = data
		apply(&t, j.m, float32(j.scale*j.m.Alpha/float32(j.m.Rank())))
	}
}

// resolve matches every module of loras to a target and checks shapes.
func resolve(targets []*Target, strict bool, loras []Scaled) ([]job, Report, error) {
	index, err := newIndex(targets)
	if err != nil {
		return nil, Report{}, err
	}
	var jobs []job
	var rep Report
	for _, s := range loras {
		for _, m := range s.LoRA.Modules {
			t := index.find(m, s.LoRA.Format)
			if t == nil {
				if strict {
					return nil, Report{}, fmt.Errorf("%w: %q (%s)", ErrUnmatched, m.Key, m.Net)
				}
				rep.Unmatched = append(rep.Unmatched, m.Key)
				continue
			}
			if err := fits(m, t); err != nil {
				return nil, Report{}, err
			}
			jobs = append(jobs, job{m, t, s.Scale})
			rep.Merged++
		}
	}
	return jobs, rep, nil
}

// index finds targets by network and module path, dotted or kohya-flat.
type index struct {
	dotted map[string]*Target
	flat   map[string]*Target // nil value: two targets flatten alike
}

// addFlat indexes t under the kohya-flat form of module path mod.
func (ix *index) addFlat(net, mod string, t *Target) {
	flat := net + "/" + strings.ReplaceAll(mod, ".", "_")
	if _, dup := ix.flat[flat]; dup {
		ix.flat[flat] = nil
	} else {
		ix.flat[flat] = t
	}
}

// addLDM indexes the UNet targets under their LDM module paths too
// (lora_unet_input_blocks_4_1_..., kohya's SDXL names). A target list
// that is not a whole UNet has no LDM numbering, and gets none.
func (ix *index) addLDM(targets []*Target) {
	byMod := map[string]*Target{}
	var mods []string
	for _, t := range targets {
		if t.Net == "unet" {
			mod := strings.TrimSuffix(t.Name, ".weight")
			byMod[mod] = t
			mods = append(mods, mod)
		}
	}
	ldm, err := convert.LDMUNetModules(mods)
	if err != nil {
		return
	}
	for l, mod := range ldm {
		ix.addFlat("unet", l, byMod[mod])
	}
}

func newIndex(targets []*Target) (*index, error) {
	ix := &index{dotted: map[string]*Target{}, flat: map[string]*Target{}}
	for _, t := range targets {
		mod, ok := strings.CutSuffix(t.Name, ".weight")
		if !ok {
			return nil, fmt.Errorf("lora: target %q is not a .weight", t.Name)
		}
		var numel int64 = 1
		for _, d := range t.Shape {
			numel *= d
		}
		if (t.Data != nil && numel != int64(len(t.Data))) || (t.Transposed && len(t.Shape) != 2) {
			return nil, fmt.Errorf("lora: target %q: %d values for shape %v (transposed %v)", t.Name, len(t.Data), t.Shape, t.Transposed)
		}
		key := t.Net + "/" + mod
		if ix.dotted[key] != nil {
			return nil, fmt.Errorf("lora: target %s %q given twice", t.Net, t.Name)
		}
		ix.dotted[key] = t
		ix.addFlat(t.Net, mod, t)
	}
	ix.addLDM(targets)
	return ix, nil
}

func (ix *index) find(m *Module, format string) *Target {
	if format == FormatKohya {
		return ix.flat[m.Net+"/"+m.path]
	}
	return ix.dotted[m.Net+"/"+m.path]
}

// fits checks that up @ down has the target's shape: [out, in*kh*kw].
func fits(m *Module, t *Target) error {
	out, in := m.UpShape[0], m.DownShape[1]
	want := []int64{out, in}
	if len(m.DownShape) == 4 {
		want = append(want, m.DownShape[2], m.DownShape[3])
	}
	shape := t.Shape
	if len(shape) == 4 && len(want) == 2 {
		want = append(want, 1, 1) // a linear LoRA on a 1x1 convolution
	}
	if !slices.Equal(shape, want) {
		return fmt.Errorf("%w: %q makes %v, %s %q is %v", ErrShape, m.Key, want, t.Net, t.Name, t.Shape)
	}
	return nil
}

// apply adds s * up @ down to t. Each product is rounded to float32 on its
// own (the conversions forbid fused multiply-adds), and every element sums
// its rank terms in the same order in both layouts and however the rows
// are split among goroutines, so the result depends neither on the CPU,
// nor on the layout, nor on the core count.
func apply(t *Target, m *Module, s float32) {
	out, rank := m.UpShape[0], m.Rank()
	cols := int64(len(m.Down)) / rank // in * kh * kw
	if t.Transposed {
		parallelRows(cols, out*rank, func(lo, hi int64) { applyTransposed(t.Data, m, s, out, rank, cols, lo, hi) })
		return
	}
	parallelRows(out, cols*rank, func(lo, hi int64) {
		row := make([]float32, cols)
		for o := lo; o < hi; o++ {
			clear(row)
			for r := range rank {
				u := m.Up[o*rank+r]
				down := m.Down[r*cols : (r+1)*cols]
				for i, d := range down {
					row[i] += float32(u * d)
				}
			}
			w := t.Data[o*cols : (o+1)*cols]
			for i, v := range row {
				w[i] += float32(s * v)
			}
		}
	})
}

// applyTransposed is apply for data stored [in, out] (MatMul weights),
// stored rows lo..hi: it walks the stored rows, so every write is
// sequential (a strided walk misses the cache on every element of a wide
// layer).
func applyTransposed(data []float32, m *Module, s float32, out, rank, cols, lo, hi int64) {
	col := make([]float32, rank)
	for i := lo; i < hi; i++ {
		for r := range rank {
			col[r] = m.Down[r*cols+i]
		}
		w := data[i*out : (i+1)*out]
		o := 0
		// Four outputs at a time: four independent sums for the CPU to
		// overlap, each still over r in order.
		for ; o+4 <= len(w); o += 4 {
			u0 := m.Up[int64(o)*rank : int64(o+1)*rank]
			u1 := m.Up[int64(o+1)*rank : int64(o+2)*rank]
			u2 := m.Up[int64(o+2)*rank : int64(o+3)*rank]
			u3 := m.Up[int64(o+3)*rank : int64(o+4)*rank]
			var a0, a1, a2, a3 float32
			for r, c := range col {
				a0 += float32(u0[r] * c)
				a1 += float32(u1[r] * c)
				a2 += float32(u2[r] * c)
				a3 += float32(u3[r] * c)
			}
			w[o] += float32(s * a0)
			w[o+1] += float32(s * a1)
			w[o+2] += float32(s * a2)
			w[o+3] += float32(s * a3)
		}
		for ; o < len(w); o++ {
			up := m.Up[int64(o)*rank : int64(o+1)*rank]
			var acc float32
			for r, u := range up {
				acc += float32(u * col[r])
			}
			w[o] += float32(s * acc)
		}
	}
}

// parallelRows runs fn over [0, rows) in one chunk per CPU when the work
// (rows x perRow multiply-adds) is worth the goroutines.
func parallelRows(rows, perRow int64, fn func(lo, hi int64)) {
	workers := runtime.GOMAXPROCS(0)
	if rows*perRow < 1<<20 {
		workers = 1
	}
	parallel.Rows(int(rows), workers, func(lo, hi int) { fn(int64(lo), int64(hi)) })
}

// NodeModule turns an ONNX node name that follows the diffusers module
// path, as optimum's exports do ("/down_blocks.0/attentions.0/proj_in/Conv",
// "/text_model/encoder/layers.0/self_attn/q_proj/MatMul"), into the module
// path a LoRA names (down_blocks.0.attentions.0.proj_in).
func NodeModule(node string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(node, "/"), "/")
	if len(parts) < 2 || parts[0] == "" {
		return "", false
	}
	return strings.Join(parts[:len(parts)-1], "."), true
}
