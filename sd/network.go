package sd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// ioSpec is one graph input or output as ONNX Runtime reports it.
type ioSpec struct {
	Name string
	Type ort.TensorElementDataType
	Dims []int64 // -1 for symbolic dimensions
}

func (s ioSpec) rank() int { return len(s.Dims) }

func (s ioSpec) String() string {
	return fmt.Sprintf("%s %s%v", s.Name, s.Type, s.Dims)
}

// network is one ONNX graph of a model (text encoder, UNet, VAE half) with
// its session, created once and reused for every run.
type network struct {
	name    string // folder name: text_encoder, unet, ...
	path    string
	inputs  []ioSpec
	outputs []ioSpec
	device  Device
	created time.Duration // session creation time
	session *ort.DynamicAdvancedSession
}

// inspectNetwork reads a network's inputs and outputs from ONNX Runtime
// without optimising the graph, so a wrong folder fails fast and the caller
// can adapt to the exporter's variant before the real session exists.
func inspectNetwork(modelDir, name string) (*network, error) {
	path := filepath.Join(modelDir, name, "model.onnx")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %s: missing (%v)", ErrBadModel, path, errors.Unwrap(err))
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: onnx runtime cannot read it: %v", ErrBadModel, path, err)
	}
	return &network{name: name, path: path, inputs: specs(ins), outputs: specs(outs)}, nil
}

func specs(infos []ort.InputOutputInfo) []ioSpec {
	out := make([]ioSpec, len(infos))
	for i, info := range infos {
		out[i] = ioSpec{Name: info.Name, Type: info.DataType, Dims: []int64(info.Dimensions)}
	}
	return out
}

func (n *network) input(name string) (ioSpec, bool) { return findSpec(n.inputs, name) }

func (n *network) output(name string) (ioSpec, bool) { return findSpec(n.outputs, name) }

func findSpec(list []ioSpec, name string) (ioSpec, bool) {
	for _, s := range list {
		if s.Name == name {
			return s, true
		}
	}
	return ioSpec{}, false
}

// bad builds the error for an unexpected graph signature, listing what the
// graph actually has so the user can see which exporter variant it is.
func (n *network) bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s (inputs: %s; outputs: %s)", ErrBadModel, n.path,
		fmt.Sprintf(format, args...), joinSpecs(n.inputs), joinSpecs(n.outputs))
}

func joinSpecs(list []ioSpec) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// requireFloat checks that an input/output is float32 or float16 of a rank.
func (n *network) requireFloat(s ioSpec, found bool, name string, ranks ...int) error {
	if !found {
		return n.bad("no %q", name)
	}
	if s.Type != ort.TensorElementDataTypeFloat && s.Type != ort.TensorElementDataTypeFloat16 {
		return n.bad("%q is %s, want float or float16", name, s.Type)
	}
	for _, r := range ranks {
		if s.rank() == r {
			return nil
		}
	}
	return n.bad("%q has rank %d, want %v", name, s.rank(), ranks)
}

// open creates the session for all inputs and the named outputs (all when
// none are named). onnxData, when set, replaces the file's bytes (a rewritten
// graph); external weights are still found beside the file.
func (n *network) open(ctx context.Context, rt *Runtime, onnxData []byte, outNames ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names := func(list []ioSpec) []string {
		out := make([]string, len(list))
		for i, s := range list {
			out[i] = s.Name
		}
		return out
	}
	inNames := names(n.inputs)
	if len(outNames) == 0 {
		outNames = names(n.outputs)
	}
	create := func(dev Device) (*ort.DynamicAdvancedSession, error) {
		so, err := rt.sessionOptions(dev)
		if err != nil {
			return nil, err
		}
		defer so.Destroy()
		if onnxData != nil {
			// Loading from memory: tell ORT where external weights live.
			if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", filepath.Dir(n.path)); err != nil {
				return nil, err
			}
			return ort.NewDynamicAdvancedSessionWithONNXData(onnxData, inNames, outNames, so)
		}
		return ort.NewDynamicAdvancedSession(n.path, inNames, outNames, so)
	}
	start := time.Now()
	dev, _ := rt.Device()
	s, err := create(dev)
	if err != nil && dev.CUDA {
		err = explainORTError(err, dev)
		if !rt.fallBackToCPU(n.name, err) {
			return fmt.Errorf("create session for %s (%s) on %s: %w", n.name, n.path, dev, err)
		}
		dev = Device{}
		s, err = create(dev)
	}
	if err != nil {
		return fmt.Errorf("create session for %s (%s) on %s: %w", n.name, n.path, dev, explainORTError(err, dev))
	}
	n.session, n.device, n.created = s, dev, time.Since(start)
	return nil
}

// run executes the network; outputs must be pre-allocated (ORT cannot hand
// float16 outputs back through the Go binding).
func (n *network) run(inputs, outputs []ort.Value) error {
	if err := n.session.Run(inputs, outputs); err != nil {
		return fmt.Errorf("run %s on %s: %w", n.name, n.device, explainORTError(err, n.device))
	}
	return nil
}

func (n *network) close() error {
	if n == nil || n.session == nil {
		return nil
	}
	err := n.session.Destroy()
	n.session = nil
	return err
}
