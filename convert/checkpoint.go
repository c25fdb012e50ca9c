// Package convert turns the files people download (single-file
// .safetensors checkpoints in the LDM layout, LoRA files) into what
// sdgate's graphs need: tensors by their diffusers / transformers names,
// in torch's layout. It never runs a pickle, never holds a whole
// checkpoint in memory, and says which tensors it used and which not.
//
// A Checkpoint satisfies models/synth's Weights interface, so `sdgate
// import` writes the same graphs `sdgate synth` does, with the
// checkpoint's tensors as initializers. The package imports no graph code.
package convert

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sdgate/sdgate/convert/safetensors"
)

// Family is a Stable Diffusion generation.
type Family string

// The families import knows.
const (
	FamilyAuto Family = "auto"
	FamilySD1  Family = "sd15" // SD 1.x: CLIP ViT-L text encoder, 768-wide context
	FamilySD2  Family = "sd2"  // SD 2.x: OpenCLIP ViT-H text encoder, 1024-wide context
	FamilySDXL Family = "sdxl"
)

// Prediction types of a denoiser.
const (
	PredictEpsilon = "epsilon"
	PredictV       = "v_prediction"
)

var (
	// ErrMapping: a graph tensor name has no counterpart in the LDM layout.
	ErrMapping = errors.New("no checkpoint name for tensor")
	// ErrMissing: the checkpoint lacks a tensor the graph needs.
	ErrMissing = errors.New("checkpoint lacks tensor")
	// ErrShape: a checkpoint tensor's shape is not the graph's.
	ErrShape = errors.New("tensor shape differs")
	// ErrSDXL: an SDXL variant sdgate has no graphs for (the refiner).
	ErrSDXL = errors.New("SDXL variant without sdgate graphs")
	// ErrUnsupported: a checkpoint sdgate cannot import.
	ErrUnsupported = errors.New("unsupported checkpoint")
	// ErrPrediction: an SD 2 checkpoint that does not say whether it
	// predicts noise or v.
	ErrPrediction = errors.New("prediction type unknown")
)

// Options for OpenCheckpoint. The zero value detects everything.
type Options struct {
	Family     Family // "" or FamilyAuto: detect
	VAE        string // a VAE .safetensors (LDM or diffusers layout) replacing the baked-in one
	Prediction string // "" (detect), PredictEpsilon or PredictV
	NoEMA      bool   // use the training weights even when EMA weights are present
}

// Info is what detection found.
type Info struct {
	Family     Family
	Inpaint    bool   // the UNet takes 9 channels: latents, mask, masked image
	Prediction string // PredictEpsilon or PredictV
	EMA        bool   // the UNet's EMA weights are used
	ContextDim int64  // cross-attention width (768 SD 1, 1024 SD 2, 2048 SDXL)
	Vocab      int64  // token embedding rows
}

// Checkpoint serves a single-file checkpoint's tensors by diffusers name.
// It holds the header only; each tensor is read when asked for.
type Checkpoint struct {
	Info
	f         *safetensors.File
	oldText   bool // SD 1 keys without text_model. (transformers before 4.x)
	unet      unetLayout
	vaeLevels int
	vae       *vaeFile // the VAE's file: the checkpoint's or --vae's

	mu   sync.Mutex
	used map[*safetensors.File]map[string]bool
}

// OpenCheckpoint opens path (a .safetensors in the LDM layout), detects
// its family and checks it can be imported.
func OpenCheckpoint(path string, opts Options) (*Checkpoint, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	c, err := newCheckpoint(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if opts.VAE != "" {
		vf, err := safetensors.Open(opts.VAE)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("vae: %w", err)
		}
		if c.vae, err = newVAEFile(vf); err != nil {
			f.Close()
			vf.Close()
			return nil, fmt.Errorf("vae %s: %w", opts.VAE, err)
		}
	}
	return c, nil
}

// NewCheckpoint is OpenCheckpoint for an opened file (opts.VAE is ignored).
func NewCheckpoint(f *safetensors.File, opts Options) (*Checkpoint, error) {
	return newCheckpoint(f, opts)
}

func newCheckpoint(f *safetensors.File, opts Options) (*Checkpoint, error) {
	c := &Checkpoint{f: f, used: map[*safetensors.File]map[string]bool{}}
	has := func(k string) bool { _, ok := f.Info(k); return ok }
	for _, t := range f.Tensors() {
		if strings.HasPrefix(t.Name, "lora_") || strings.Contains(t.Name, ".lora_A.") || strings.Contains(t.Name, ".lora_down.") {
			return nil, fmt.Errorf("%w: %q is a LoRA tensor: this file is a LoRA, not a checkpoint", ErrUnsupported, t.Name)
		}
	}
	convIn, ok := f.Info(unetPrefix + "input_blocks.0.0.weight")
	if !ok || len(convIn.Shape) != 4 {
		return nil, fmt.Errorf("%w: no LDM UNet (%sinput_blocks.0.0.weight); a diffusers folder, a VAE or a LoRA is not a single-file checkpoint",
			ErrUnsupported, unetPrefix)
	}
	switch convIn.Shape[1] {
	case 4:
	case 9:
		c.Inpaint = true
	default:
		return nil, fmt.Errorf("%w: the UNet takes %d input channels (4 and 9, inpainting, are supported)", ErrUnsupported, convIn.Shape[1])
	}

	var tok safetensors.Info
	switch {
	case has(sdxlText1+"text_model.embeddings.token_embedding.weight") && has(sdxlText2+"token_embedding.weight"):
		c.Family = FamilySDXL
		tok, _ = f.Info(sdxlText1 + "text_model.embeddings.token_embedding.weight")
	case has(sdxlRefiner + "token_embedding.weight"):
		return nil, fmt.Errorf("%w: an SDXL refiner (%s...: OpenCLIP bigG as its only text encoder, aesthetic-score conditioning); "+
			"sdgate serves SDXL base models: import the base checkpoint", ErrSDXL, sdxlRefiner)
	case hasPrefix(f, "conditioner.embedders."):
		return nil, fmt.Errorf("%w: SDXL-style conditioner without CLIP ViT-L (%stext_model.*) and OpenCLIP bigG (%s*)",
			ErrUnsupported, sdxlText1, sdxlText2)
	case has(sd1Text + "text_model.embeddings.token_embedding.weight"):
		c.Family = FamilySD1
		tok, _ = f.Info(sd1Text + "text_model.embeddings.token_embedding.weight")
	case has(sd1Text + "embeddings.token_embedding.weight"): // transformers before text_model.
		c.Family, c.oldText = FamilySD1, true
		tok, _ = f.Info(sd1Text + "embeddings.token_embedding.weight")
	case has(sd2Text + "token_embedding.weight"):
		c.Family = FamilySD2
		tok, _ = f.Info(sd2Text + "token_embedding.weight")
	default:
		return nil, fmt.Errorf("%w: no text encoder (%s..., %s... or SDXL's %s... and %s...)", ErrUnsupported, sd1Text, sd2Text, sdxlText1, sdxlText2)
	}
	if len(tok.Shape) == 2 {
		c.Vocab = tok.Shape[0]
	}
	for _, t := range f.Tensors() {
		if strings.HasPrefix(t.Name, unetPrefix) && strings.HasSuffix(t.Name, ".attn2.to_k.weight") && len(t.Shape) == 2 {
			c.ContextDim = t.Shape[1]
			break
		}
	}
	if c.Family == FamilySD1 && len(tok.Shape) == 2 && c.ContextDim != 0 && c.ContextDim != tok.Shape[1] {
		return nil, fmt.Errorf("%w: CLIP text encoder of width %d but UNet context of %d", ErrUnsupported, tok.Shape[1], c.ContextDim)
	}
	if c.Family == FamilySDXL {
		tok2, _ := f.Info(sdxlText2 + "token_embedding.weight")
		if len(tok.Shape) != 2 || len(tok2.Shape) != 2 || (c.ContextDim != 0 && c.ContextDim != tok.Shape[1]+tok2.Shape[1]) {
			return nil, fmt.Errorf("%w: SDXL text encoders' token embeddings %v and %v do not add up to the UNet's context width %d",
				ErrShape, tok.Shape, tok2.Shape, c.ContextDim)
		}
	}
	if opts.Family != "" && opts.Family != FamilyAuto && opts.Family != c.Family {
		return nil, fmt.Errorf("%w: --family %s, but the checkpoint is %s (context width %d)", ErrUnsupported, opts.Family, c.Family, c.ContextDim)
	}

	pred, err := prediction(f, c.Family, opts.Prediction)
	if err != nil {
		return nil, err
	}
	c.Prediction = pred
	ema := 0
	for _, t := range f.Tensors() {
		if strings.HasPrefix(t.Name, emaPrefix) && t.Name != emaPrefix+"decay" && t.Name != emaPrefix+"num_updates" {
			ema++
		}
	}
	c.EMA = ema > 100 && !opts.NoEMA // as diffusers: a few stray keys are no EMA model

	if c.unet, err = detectUNetLayout(c); err != nil {
		return nil, err
	}
	c.vaeLevels = countLevels(f, vaePrefix+"decoder.up.")
	c.vae = &vaeFile{f: f, prefix: vaePrefix, levels: c.vaeLevels}
	return c, nil
}

// prediction reads the prediction type: the flag, else the metadata
// (Stability's ModelSpec, kohya's training notes) or a v_pred marker.
func prediction(f *safetensors.File, fam Family, flag string) (string, error) {
	switch flag {
	case PredictEpsilon, PredictV:
		return flag, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("%w: prediction %q (want %s or %s)", ErrUnsupported, flag, PredictEpsilon, PredictV)
	}
	md := f.Metadata()
	switch strings.ToLower(md["modelspec.prediction_type"]) {
	case "v", "v_prediction", "v-prediction":
		return PredictV, nil
	case "epsilon", "eps":
		return PredictEpsilon, nil
	}
	if _, ok := f.Info("v_pred"); ok || strings.HasSuffix(md["modelspec.architecture"], "-v") || strings.EqualFold(md["ss_v_parameterization"], "true") {
		return PredictV, nil
	}
	if fam == FamilySD1 || fam == FamilySDXL { // SDXL base and its fine-tunes predict noise unless they say
		return PredictEpsilon, nil
	}
	return "", fmt.Errorf("%w: an SD 2 checkpoint may predict noise (512 base) or v (768): give --prediction %s or %s",
		ErrPrediction, PredictEpsilon, PredictV)
}

// detectUNetLayout finds the ResNets per level from the first downsampler
// (input_blocks.<layers+1>.0.op) and which up levels have attentions.
func detectUNetLayout(c *Checkpoint) (unetLayout, error) {
	l := unetLayout{upAttn: map[int]bool{}}
	for k := 1; k < 64; k++ {
		if c.hasUNet(fmt.Sprintf("input_blocks.%d.0.op.weight", k)) {
			l.layers = k - 1
			break
		}
	}
	if l.layers == 0 {
		return l, fmt.Errorf("%w: no UNet downsampler (%sinput_blocks.N.0.op.weight)", ErrUnsupported, unetPrefix)
	}
	levels := countLevels(c.f, unetPrefix+"output_blocks.")
	for i := range levels / (l.layers + 1) { // output_blocks: layers+1 per up level
		l.upAttn[i] = c.hasUNet(fmt.Sprintf("output_blocks.%d.1.norm.weight", i*(l.layers+1)))
	}
	return l, nil
}

// hasUNet says whether the UNet key (no prefix) exists, in either copy.
func (c *Checkpoint) hasUNet(key string) bool {
	_, ok := c.f.Info(unetPrefix + key)
	if !ok {
		_, ok = c.f.Info(emaKey(unetPrefix + key))
	}
	return ok
}

// emaKey is where LDM keeps the EMA copy of a UNet tensor: "model_ema."
// and the key after "model." with its dots removed.
func emaKey(key string) string {
	_, rest, _ := strings.Cut(key, ".")
	return emaPrefix + strings.ReplaceAll(rest, ".", "")
}

// hasPrefix says whether any tensor's name starts with prefix.
func hasPrefix(f *safetensors.File, prefix string) bool {
	for _, t := range f.Tensors() {
		if strings.HasPrefix(t.Name, prefix) {
			return true
		}
	}
	return false
}

// countLevels counts the distinct indexes N of keys prefix+"N.".
func countLevels(f *safetensors.File, prefix string) int {
	seen := map[int]bool{}
	for _, t := range f.Tensors() {
		if rest, ok := strings.CutPrefix(t.Name, prefix); ok {
			n, _, _ := strings.Cut(rest, ".")
			if i, err := strconv.Atoi(n); err == nil && i >= 0 {
				seen[i] = true
			}
		}
	}
	return len(seen)
}

// Close closes the checkpoint and the replacement VAE.
func (c *Checkpoint) Close() error {
	err := c.f.Close()
	if c.vae.f != c.f {
		err = errors.Join(err, c.vae.f.Close())
	}
	return err
}

// Metadata is the checkpoint's safetensors metadata.
func (c *Checkpoint) Metadata() map[string]string { return c.f.Metadata() }

// Unused is a checkpoint tensor no graph tensor was read from, and why.
type Unused struct {
	Key    string
	Reason string // "" when the key is not known to be unneeded
}

// Unused lists, sorted, the tensors of the checkpoint (and of the
// replacement VAE) that nothing has read so far.
func (c *Checkpoint) Unused() []Unused {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Unused
	files := []*safetensors.File{c.f}
	if c.vae.f != c.f {
		files = append(files, c.vae.f)
	}
	for _, f := range files {
		for _, t := range f.Tensors() {
			if !c.used[f][t.Name] {
				out = append(out, Unused{Key: t.Name, Reason: c.unusedReason(f, t.Name)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
