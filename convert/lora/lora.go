// Package lora reads LoRA files (kohya sd-scripts' lora_unet_* / lora_te_*
// keys and diffusers / peft lora_A / lora_B keys) into one representation
// and merges them into a model's weights: W' = W + scale * (alpha/rank) * up @ down.
// LyCORIS kinds (LoHa, LoKr, ...) are refused. Module names are resolved
// against the weights being merged, so a key that matches nothing is
// reported, never silently dropped.
package lora

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sdgate/sdgate/convert/safetensors"
)

var (
	// ErrFormat: the file's keys are not a LoRA sdgate reads.
	ErrFormat = errors.New("not a LoRA file")
	// ErrLyCORIS: LoHa, LoKr and other LyCORIS kinds are not merged.
	ErrLyCORIS = errors.New("LyCORIS adapters (LoHa, LoKr, ...) are not supported: only plain LoRA")
	// ErrUnmatched: a LoRA module matches no weight of the model.
	ErrUnmatched = errors.New("LoRA module matches no model weight")
	// ErrShape: a LoRA's matrices do not fit their weight.
	ErrShape = errors.New("LoRA shape does not fit")
)

// Formats of a LoRA file.
const (
	FormatKohya = "kohya" // lora_unet_down_blocks_0_..., lora_down / lora_up / alpha
	FormatPeft  = "peft"  // unet.down_blocks.0....lora_A / lora_B (diffusers, peft)
)

// Module is one adapted layer: down [rank, in, (kh, kw)] and up [out,
// rank, (1, 1)], the torch layouts of both formats.
type Module struct {
	Key string // the module's key prefix in the file, for messages
	Net string // "unet", "text_encoder" or (SDXL) "text_encoder_2"
	// path is the module path: dotted diffusers (peft) or underscored
	// (kohya), whose SDXL UNet names follow the LDM layout instead.
	path string

	Down, Up           []float32
	DownShape, UpShape []int64
	Alpha              float32 // scale = Alpha / Rank; Rank when the file has no alpha
	hasAlpha           bool    // the file gave Alpha (a peft config does not override it)
}

// Rank is the LoRA rank (rows of down).
func (m *Module) Rank() int64 { return m.DownShape[0] }

// LoRA is a parsed file.
type LoRA struct {
	Format  string
	Modules []*Module // sorted by Key
}

// Open reads a LoRA .safetensors file. All its matrices are read: a LoRA
// is small (tens to hundreds of MB). A peft file's strength comes from its
// adapter_config.json (PeftConfigPath) when there is one.
func Open(path string) (*LoRA, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := readPeftConfig(l, path); err != nil {
		return nil, err
	}
	return l, nil
}

// lycorisMarks are key parts only LyCORIS kinds have.
var lycorisMarks = []string{".hada_", ".lokr_", ".oft_", "oft_blocks", ".lora_mid.", ".dora_scale", ".w_norm", ".b_norm", ".glora_"}

// Parse reads the LoRA in f.
func Parse(f *safetensors.File) (*LoRA, error) {
	mods := map[string]*Module{}
	alphas := map[string]float32{}
	formats := map[string]bool{}
	get := func(prefix, net, path, format string) *Module {
		m := mods[prefix]
		if m == nil {
			m = &Module{Key: prefix, Net: net, path: path}
			mods[prefix] = m
		}
		formats[format] = true
		return m
	}
	for _, t := range f.Tensors() {
		k := t.Name
		for _, mark := range lycorisMarks {
			if strings.Contains(k, mark) || strings.HasSuffix(k, ".diff") || strings.HasSuffix(k, ".diff_b") {
				return nil, fmt.Errorf("%w: key %q", ErrLyCORIS, k)
			}
		}
		prefix, role, ok := splitRole(k)
		if !ok {
			return nil, fmt.Errorf("%w: key %q is neither lora_down/lora_up/alpha nor lora_A/lora_B", ErrFormat, k)
		}
		net, path, format, ok := modulePath(prefix)
		if !ok {
			return nil, fmt.Errorf("%w: key %q names no unet or text encoder module", ErrFormat, k)
		}
		if role == "alpha" {
			vals, err := f.Float32(k)
			if err != nil || len(vals) != 1 {
				return nil, fmt.Errorf("%w: alpha %q must be one number (%v)", ErrFormat, k, err)
			}
			alphas[prefix] = vals[0]
			continue
		}
		vals, err := f.Float32(k)
		if err != nil {
			return nil, err
		}
		m := get(prefix, net, path, format)
		if role == "down" {
			m.Down, m.DownShape = vals, t.Shape
		} else {
			m.Up, m.UpShape = vals, t.Shape
		}
	}
	if len(formats) > 1 {
		return nil, fmt.Errorf("%w: kohya and peft keys mixed in one file", ErrFormat)
	}
	l := &LoRA{}
	for f := range formats {
		l.Format = f
	}
	for prefix, m := range mods {
		if err := m.validate(); err != nil {
			return nil, err
		}
		m.Alpha = float32(m.Rank())
		if a, ok := alphas[prefix]; ok {
			m.Alpha, m.hasAlpha = a, true
		}
		l.Modules = append(l.Modules, m)
	}
	for prefix := range alphas {
		if mods[prefix] == nil {
			return nil, fmt.Errorf("%w: alpha %q without matrices", ErrFormat, prefix)
		}
	}
	if len(l.Modules) == 0 {
		return nil, fmt.Errorf("%w: no LoRA matrices", ErrFormat)
	}
	sort.Slice(l.Modules, func(i, j int) bool { return l.Modules[i].Key < l.Modules[j].Key })
	return l, nil
}

// splitRole cuts a key into its module prefix and role (down, up, alpha).
func splitRole(k string) (prefix, role string, ok bool) {
	for _, r := range []struct{ suffix, role string }{
		{".lora_down.weight", "down"}, {".lora_up.weight", "up"}, {".alpha", "alpha"},
		{".lora_A.weight", "down"}, {".lora_B.weight", "up"},
		{".lora.down.weight", "down"}, {".lora.up.weight", "up"},
		{"_lora.down.weight", "down"}, {"_lora.up.weight", "up"}, // attention processors of diffusers < 0.22
		{".lora_linear_layer.down.weight", "down"}, {".lora_linear_layer.up.weight", "up"}, // text encoders, diffusers < 0.22 (SDXL's too)
		{".lora_A.default.weight", "down"}, {".lora_B.default.weight", "up"},
	} {
		if p, found := strings.CutSuffix(k, r.suffix); found {
			return p, r.role, p != ""
		}
	}
	return "", "", false
}

// modulePath reads the network and module path out of a key prefix.
func modulePath(prefix string) (net, path, format string, ok bool) {
	for _, r := range []struct{ prefix, net string }{
		{"lora_unet_", "unet"}, {"lora_te_", "text_encoder"},
		{"lora_te1_", "text_encoder"}, {"lora_te2_", "text_encoder_2"}, // SDXL's CLIP ViT-L and OpenCLIP bigG
	} {
		if p, found := strings.CutPrefix(prefix, r.prefix); found {
			return r.net, p, FormatKohya, p != ""
		}
	}
	for _, r := range []struct{ prefix, net string }{
		{"unet.", "unet"}, {"text_encoder.", "text_encoder"}, {"text_encoder_2.", "text_encoder_2"}, {"base_model.model.", "unet"},
	} {
		if p, found := strings.CutPrefix(prefix, r.prefix); found && p != "" {
			return r.net, oldDiffusersPath(p), FormatPeft, true
		}
	}
	return "", "", "", false
}

// oldDiffusersPath maps diffusers' attention-processor LoRA names
// (attn1.processor.to_q_lora) to the module they adapt (attn1.to_q).
func oldDiffusersPath(p string) string {
	head, tail, found := strings.Cut(p, ".processor.")
	if !found {
		return p
	}
	mod := strings.TrimSuffix(tail, "_lora")
	if mod == "to_out" {
		mod = "to_out.0"
	}
	return head + "." + mod
}

func (m *Module) validate() error {
	if m.Down == nil || m.Up == nil {
		return fmt.Errorf("%w: %q lacks its down or up matrix", ErrFormat, m.Key)
	}
	if len(m.DownShape) != 2 && len(m.DownShape) != 4 {
		return fmt.Errorf("%w: %q down %v is neither linear nor conv", ErrShape, m.Key, m.DownShape)
	}
	rank := m.DownShape[0]
	okUp := (len(m.UpShape) == 2 || (len(m.UpShape) == 4 && m.UpShape[2] == 1 && m.UpShape[3] == 1)) && m.UpShape[1] == rank
	if rank <= 0 || !okUp {
		return fmt.Errorf("%w: %q up %v does not follow down %v", ErrShape, m.Key, m.UpShape, m.DownShape)
	}
	return nil
}
