package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// builder grows one network's graph. Parameters take diffusers' and
// transformers' names (down_blocks.0.resnets.0.conv1.weight), so the files
// read like real exports in a viewer; intermediate values are numbered.
type builder struct {
	g      *graph
	net    string   // network name, mixed into every weight's seed
	float  dataType // element type of activations and weights: dtFloat or dtFloat16
	seed   uint64
	consts map[string]string // constant key -> initializer name, to share them
	nextID int
	// weights supplies the parameters' values; nil draws them at random.
	weights Weights
	// scope is the diffusers module path of the layer being built
	// (down_blocks.0.attentions.0.proj_in); nodes are named after it as
	// optimum's exports name them: /down_blocks.0/attentions.0/proj_in/Conv.
	scope     string
	nodeNames map[string]int
	// anonymousMatMul names MatMul weights onnx::MatMul_N, as torch.onnx
	// names the transposed copies it makes (only node names tell the layer).
	anonymousMatMul bool
	// fusedAttention emits unmasked attention as com.microsoft
	// MultiHeadAttention (Options.FusedAttention).
	fusedAttention bool
}

func newBuilder(net string, float dataType, seed uint64) *builder {
	return &builder{
		g:      &graph{name: net, nameUsed: map[string]bool{}},
		net:    net,
		float:  float,
		seed:   seed,
		consts: map[string]string{}, nodeNames: map[string]int{},
	}
}

// newNetBuilder is newBuilder with a network's options.
func newNetBuilder(net string, o netOptions) *builder {
	b := newBuilder(net, o.float, o.seed)
	b.weights = o.weights
	b.anonymousMatMul = o.anonymousMatMul
	b.fusedAttention = o.fusedAttention
	return b
}

// claim registers a value name, panicking on a duplicate: that is a bug in
// a network definition, caught by every test that builds it.
func (b *builder) claim(name string) string {
	if b.g.nameUsed[name] {
		panic(fmt.Sprintf("synth: %s: value %q defined twice", b.net, name))
	}
	b.g.nameUsed[name] = true
	return name
}

// input declares a graph input and returns its value name.
func (b *builder) input(name string, dt dataType, dims ...dim) string {
	b.g.inputs = append(b.g.inputs, &valueInfo{name: b.claim(name), dtype: dt, dims: dims})
	return name
}

// output exposes value as the graph output name.
func (b *builder) output(value, name string, dt dataType, dims ...dim) {
	b.g.nodes = append(b.g.nodes, &node{
		name: "output_" + name, op: "Identity",
		inputs: []string{value}, outputs: []string{b.claim(name)},
	})
	b.g.outputs = append(b.g.outputs, &valueInfo{name: name, dtype: dt, dims: dims})
}

// op adds a node with one output and returns the output's name.
func (b *builder) op(opType string, inputs []string, attrs ...*attribute) string {
	return b.opN(opType, 1, inputs, attrs...)[0]
}

// opN adds a node with n outputs. Inside a scope it is named
// /module/path/OpType (OpType_1, _2, ... when the module has several), its
// outputs NAME_output_I, as torch.onnx writes them; outside, OpType_N.
func (b *builder) opN(opType string, n int, inputs []string, attrs ...*attribute) []string {
	b.nextID++
	name, outFmt := opType+"_"+strconv.Itoa(b.nextID), "%s_out%d"
	if b.scope != "" {
		name, outFmt = nodePath(b.scope)+"/"+opType, "%s_output_%d"
		if k := b.nodeNames[name]; k > 0 {
			b.nodeNames[name] = k + 1
			name += "_" + strconv.Itoa(k)
		} else {
			b.nodeNames[name] = 1
		}
	}
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.claim(fmt.Sprintf(outFmt, name, i))
	}
	b.g.nodes = append(b.g.nodes, &node{name: name, op: opType, inputs: inputs, outputs: outs, attrs: attrs})
	return outs
}

func (b *builder) addInit(t *tensor) string {
	b.claim(t.name)
	b.g.inits = append(b.g.inits, t)
	return t.name
}

// weight adds a parameter drawn with standard deviation std, stored in
// torch's layout.
func (b *builder) weight(name string, std float64, dims ...int64) string {
	return b.param(name, &weightInit{std: float32(std), seed: tensorSeed(b.seed, b.net+"/"+name)}, dims, dims, false)
}

// matmulWeight is a linear layer's weight: torch stores [out, in], MatMul
// takes the transpose [in, out], as every exporter writes it.
func (b *builder) matmulWeight(name string, std float64, in, out int64) string {
	t := b.paramTensor(name, &weightInit{std: float32(std), seed: tensorSeed(b.seed, b.net+"/"+name)},
		[]int64{in, out}, []int64{out, in}, true)
	if b.anonymousMatMul {
		b.nextID++
		t.name = "onnx::MatMul_" + strconv.Itoa(b.nextID)
	}
	return b.addInit(t)
}

// within sets the module scope for the nodes a layer adds; the returned
// func restores the outer one.
func (b *builder) within(module string) func() {
	outer := b.scope
	b.scope = module
	return func() { b.scope = outer }
}

// nodePath writes a module path as torch.onnx scopes it: a list index
// stays with its list (down_blocks.0), every other part is a level.
func nodePath(module string) string {
	var sb strings.Builder
	for i, part := range strings.Split(module, ".") {
		if _, err := strconv.Atoi(part); err == nil && i > 0 {
			sb.WriteString("." + part)
			continue
		}
		sb.WriteString("/" + part)
	}
	return sb.String()
}

// filled adds a parameter with every element equal to value (norm gains
// and shifts: 1 and 0, as a freshly initialised network has them); torch
// holds it as a vector of its element count.
func (b *builder) filled(name string, value float32, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return b.param(name, &weightInit{value: value}, dims, []int64{n}, false)
}

// param adds a parameter whose values init draws, or b.weights supplies.
func (b *builder) param(name string, init *weightInit, dims, torch []int64, transposed bool) string {
	return b.addInit(b.paramTensor(name, init, dims, torch, transposed))
}

func (b *builder) paramTensor(name string, init *weightInit, dims, torch []int64, transposed bool) *tensor {
	t := &tensor{name: name, dims: dims, dtype: b.float,
		ref: &paramRef{net: b.net, name: name, torch: torch, transposed: transposed, weights: b.weights}}
	if b.weights == nil {
		t.init = init
	}
	return t
}

// ints is a shared int64 constant of shape [len(vals)].
func (b *builder) ints(vals ...int64) string {
	key := fmt.Sprint("i64", vals)
	if name, ok := b.consts[key]; ok {
		return name
	}
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	name := b.addInit(&tensor{name: b.constName(), dims: []int64{int64(len(vals))}, dtype: dtInt64, raw: raw})
	b.consts[key] = name
	return name
}

// floats is a shared constant of element type dt; dims may be empty (a scalar).
func (b *builder) floats(dt dataType, dims []int64, vals ...float32) string {
	key := fmt.Sprint("f", dt, dims, vals)
	if name, ok := b.consts[key]; ok {
		return name
	}
	raw := make([]byte, int(dt.elemSize())*len(vals))
	encodeFloats(raw, vals, dt)
	name := b.addInit(&tensor{name: b.constName(), dims: dims, dtype: dt, raw: raw})
	b.consts[key] = name
	return name
}

// scalar is a rank-0 constant in the network's float type.
func (b *builder) scalar(v float32) string { return b.floats(b.float, nil, v) }

// fill is a constant of the network's float type with every element v.
func (b *builder) fill(v float32, n int64) string {
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = v
	}
	return b.floats(b.float, []int64{n}, vals...)
}

func (b *builder) constName() string {
	b.nextID++
	return "const_" + strconv.Itoa(b.nextID)
}

// paramCount is the number of trained parameters (constants excluded), the
// figure torch's numel() sum gives for the same module.
func (g *graph) paramCount() int64 {
	var n int64
	for _, t := range g.inits {
		if t.isParam() {
			n += t.numel()
		}
	}
	return n
}

// join builds a dotted parameter name from its parts.
func join(parts ...any) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ".")
}

// fanInStd is the weight scale that keeps a layer's output variance near its
// input's: activations stay O(1) through any depth, in fp16 too.
func fanInStd(fanIn int64) float64 { return 1 / math.Sqrt(float64(fanIn)) }
