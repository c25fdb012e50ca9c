// Package synth writes Stable-Diffusion-architecture ONNX model folders
// with deterministic random weights, laid out exactly like an
// optimum/diffusers ONNX export: the models for tests, demos and GPU
// benchmarks, never committed, always regenerated.
//
// ONNX files are streamed: weights are drawn from a seeded generator
// straight into a buffered file, so the SD 1.5-sized UNet (1.7 GB in fp16)
// is written without ever being held in memory.
package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sdgate/sdgate/sd/clip"
)

var (
	// ErrUnknownPreset: Options.Preset names no preset (see Presets).
	ErrUnknownPreset = errors.New("unknown preset")
	// ErrBadTimestep: Options.Timestep is not one of the Timestep* kinds.
	ErrBadTimestep = errors.New("unknown timestep kind")
	// ErrBadPrediction: Options.Prediction is not a prediction type.
	ErrBadPrediction = errors.New("unknown prediction type")
	// ErrNotEmpty: the output folder exists and holds files.
	ErrNotEmpty = errors.New("output folder is not empty")
	// ErrTooLarge: a network's model.onnx would pass protobuf's 2 GiB limit
	// even with its weights moved out.
	ErrTooLarge = errors.New("model file over protobuf's 2 GiB limit")
)

// Options choose the preset and the export variant to imitate. The zero
// value of every field but Preset is the most common export.
type Options struct {
	Preset string // a name Presets lists: tiny, sd15, sd2, tiny-sd2

	// FP16 makes weights and every float input and output float16.
	FP16 bool
	// InputIDs64: text_encoder's input_ids is int64 (optimum), not int32.
	InputIDs64 bool
	// LatentParameters: vae_encoder outputs latent_parameters [b,8,h,w]
	// (mean and logvar) instead of latent_sample [b,4,h,w].
	LatentParameters bool
	// ExternalData puts every network's weights in model.onnx_data.
	ExternalData bool
	// Inpaint: the UNet takes 9 input channels.
	Inpaint bool
	// NoVAEEncoder leaves out vae_encoder/, as some exports do.
	NoVAEEncoder bool
	// LCM makes a latent consistency model: the UNet takes timestep_cond
	// (the guidance-scale embedding), and the scheduler is LCMScheduler.
	LCM bool
	// Timestep is the UNet's timestep input: TimestepFloatBatch (default
	// when empty), TimestepInt64Batch or TimestepFloatScalar.
	Timestep string

	Seed uint64
	// ClipBPE is OpenAI's bpe_simple_vocab_16e6.txt(.gz): the tokenizer and
	// text encoder get CLIP's real 49408-token vocabulary. Empty: a small
	// vocabulary learned from a built-in corpus.
	ClipBPE string

	// Weights, when set, supplies every parameter (sdgate import passes a
	// checkpoint); nil draws them from Seed.
	Weights Weights
	// Doc is each model.onnx's doc_string; empty says synth and the seed.
	Doc string
	// Source, when set, is recorded in sdgate.json: where the weights came from.
	Source string
	// FusedAttention emits the UNet's and VAE's attention as ONNX Runtime's
	// com.microsoft MultiHeadAttention instead of MatMul-Softmax-MatMul
	// (the text encoder's causal attention stays plain). Same weights.
	FusedAttention bool
	// AnonymousMatMulWeights names the MatMul weights onnx::MatMul_N, as
	// torch.onnx (optimum) exports name the transposed copies they make:
	// only the node names (/down_blocks.0/.../to_q/MatMul) tell the layer.
	AnonymousMatMulWeights bool
	// Turbo makes an adversarially distilled model (SDXL-Turbo, SD-Turbo):
	// EulerAncestralDiscreteScheduler with trailing timestep spacing, one
	// step and no guidance by default, 512x512 for SDXL and SD 2.
	Turbo bool
	// Prediction overrides the preset's prediction_type: "epsilon" or
	// "v_prediction". SD 2 presets with epsilon default to 512x512 (SD 2 base).
	Prediction string
}

// File is one file of the written folder.
type File struct {
	Path string // slash-separated, relative to the folder
	Size int64
}

// Report says what Write wrote and how long it took.
type Report struct {
	Dir      string
	Preset   string
	Networks []Network
	Files    []File
	Elapsed  time.Duration
}

// Bytes is the folder's total size.
func (r Report) Bytes() int64 {
	var n int64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// Params is the parameter count of all networks together.
func (r Report) Params() int64 {
	var n int64
	for _, nw := range r.Networks {
		n += nw.Params
	}
	return n
}

// Write creates the model folder dir (absent or empty) for opts. progress,
// if not nil, gets a line as each network starts and ends. The folder is
// assembled beside dir and renamed into place at the end, so dir is
// either a complete model or not there; cancelling ctx stops a long write.
func Write(ctx context.Context, dir string, opts Options, progress io.Writer) (Report, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	opts, p, merges, err := prepare(opts)
	if err != nil {
		return Report{}, err
	}
	if err := checkEmpty(dir); err != nil {
		return Report{}, err
	}
	nets := plan(p, opts)
	if err := checkWeights(nets); err != nil {
		return Report{}, err
	}

	tmp, err := makeStaging(dir)
	if err != nil {
		return Report{}, err
	}
	installed := false
	defer func() {
		if !installed {
			os.RemoveAll(tmp) // best effort: the error that got us here matters more
		}
	}()

	rep := Report{Dir: dir, Preset: opts.Preset}
	if err := writeConfigs(tmp, opts, p, merges); err != nil {
		return rep, err
	}
	doc := opts.Doc
	if doc == "" {
		doc = fmt.Sprintf("sdgate synth: preset %s, seed %d, random weights", opts.Preset, opts.Seed)
	}
	for _, net := range nets {
		fmt.Fprintf(progress, "%s: writing %s parameters\n", net.name, groupDigits(net.graph.paramCount()))
		t0 := time.Now()
		nw, err := writeNetwork(ctx, filepath.Join(tmp, net.name), net.graph, doc, opts.ExternalData)
		if err != nil {
			return rep, fmt.Errorf("write %s: %w", net.name, err)
		}
		rep.Networks = append(rep.Networks, nw)
		fmt.Fprintf(progress, "%s: done in %s\n", net.name, time.Since(t0).Round(time.Millisecond))
	}

	if err := writeNetConfigs(tmp, opts, p); err != nil {
		return rep, err
	}
	if err := install(tmp, dir); err != nil {
		return rep, err
	}
	installed = true
	rep.Files, err = listFiles(dir)
	rep.Elapsed = time.Since(start)
	return rep, err
}

// prepare resolves opts and reads the tokenizer's merges, which fix the
// text encoder's vocabulary size.
func prepare(opts Options) (Options, preset, []clip.Merge, error) {
	opts, p, err := opts.resolve()
	if err != nil {
		return opts, p, nil, err
	}
	merges, err := tokenizerMerges(opts.ClipBPE, p.learnedMerges)
	if err != nil {
		return opts, p, nil, err
	}
	p.text.vocab = vocabSize(merges)
	return opts, p, merges, nil
}

// resolve checks opts and fills in defaults; it returns the preset.
func (o Options) resolve() (Options, preset, error) {
	p, ok := presets[o.Preset]
	if !ok {
		return o, p, fmt.Errorf("%w %q (have %v)", ErrUnknownPreset, o.Preset, Presets())
	}
	switch o.Prediction {
	case "":
	case "epsilon", "v_prediction":
		if o.Prediction == "epsilon" && p.family == FamilySD2 {
			p.width, p.height = 512, 512 // SD 2 base; the 768 models predict v
		}
	default:
		return o, p, fmt.Errorf("%w %q (want epsilon or v_prediction)", ErrBadPrediction, o.Prediction)
	}
	if o.LCM && p.text2 != nil {
		return o, p, fmt.Errorf("%w %q: lcm is written for SD 1.x/2.x presets only", ErrUnknownPreset, o.Preset)
	}
	if o.Turbo {
		if o.LCM {
			return o, p, fmt.Errorf("%w: turbo and lcm are different distillations", ErrBadPrediction)
		}
		p = turbo(p)
	}
	switch o.Timestep {
	case "":
		o.Timestep = TimestepFloatBatch
	case TimestepFloatBatch, TimestepInt64Batch, TimestepFloatScalar:
	default:
		return o, p, fmt.Errorf("%w %q", ErrBadTimestep, o.Timestep)
	}
	return o, p, nil
}

// makeStaging creates a hidden folder beside dir to assemble the model in:
// the same file system, so the final rename is atomic.
func makeStaging(dir string) (string, error) {
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, "."+base+".synth-")
}

// install renames the finished staging folder to dir (absent or empty).
func install(tmp, dir string) error {
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it private
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // checkEmpty saw it empty: someone wrote to it meanwhile
	}
	return os.Rename(tmp, dir)
}

// plannedNet is one network to write. Graphs hold no weights (those are
// drawn while writing), so building all of them first costs little.
type plannedNet struct {
	name  string
	graph *graph
}

// plan builds the folder's networks in the order they are written.
func plan(p preset, opts Options) []plannedNet {
	o := netOptions{float: dtFloat, seed: opts.Seed, timestep: opts.Timestep, inpaint: opts.Inpaint, weights: opts.Weights,
		anonymousMatMul: opts.AnonymousMatMulWeights, fusedAttention: opts.FusedAttention}
	if opts.LCM {
		o.timeCondDim = lcmTimeCondDim
	}
	if opts.FP16 {
		o.float = dtFloat16
	}
	nets := []plannedNet{{"text_encoder", buildTextEncoder(p.text, o, opts.InputIDs64)}}
	if p.text2 != nil {
		text2 := *p.text2
		text2.vocab = p.text.vocab
		nets = append(nets, plannedNet{"text_encoder_2", buildTextEncoderAs("text_encoder_2", text2, o, opts.InputIDs64)})
	}
	nets = append(nets, []plannedNet{
		{"unet", buildUNet(p.unet, o)},
		{"vae_decoder", buildVAEDecoder(p.vae, o)},
	}...)
	if !opts.NoVAEEncoder {
		nets = append(nets, plannedNet{"vae_encoder", buildVAEEncoder(p.vae, o, opts.LatentParameters)})
	}
	return nets
}

func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
	}
	return nil
}

func listFiles(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, File{Path: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	return files, err // WalkDir goes in lexical order: the list is sorted
}

// groupDigits writes n with thousands separators: 859,520,964.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
