package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sdgate/sdgate/convert/safetensors"
)

// Diffusers serves a diffusers folder's .safetensors weights (unet/,
// text_encoder/, SDXL's text_encoder_2/, vae/), whose names are already the graphs' names. Like
// Checkpoint it satisfies models/synth's Weights.
type Diffusers struct {
	Info
	dir   string
	files []*safetensors.File
	nets  map[string]map[string]*safetensors.File // component -> tensor name -> its file
	mu    sync.Mutex
	used  map[string]bool // component/name
	// Merges is tokenizer/merges.txt when the folder has it: the BPE the
	// text encoder was trained with.
	Merges string
}

// diffusersComponents maps the graphs' networks to the folder's components.
var diffusersComponents = map[string]string{
	"unet": "unet", "text_encoder": "text_encoder", "text_encoder_2": "text_encoder_2", "vae_decoder": "vae", "vae_encoder": "vae",
}

// OpenDiffusers opens a diffusers pipeline folder. Pickled weights
// (.bin) are refused like pickled checkpoints.
func OpenDiffusers(dir string, opts Options) (*Diffusers, error) {
	d := &Diffusers{dir: dir, nets: map[string]map[string]*safetensors.File{}, used: map[string]bool{}}
	if err := d.openComponents(); err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if err := d.detect(opts); err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer", "merges.txt")); err == nil {
		d.Merges = filepath.Join(dir, "tokenizer", "merges.txt")
	}
	return d, nil
}

// openComponents opens the UNet, the VAE and the text encoders it
// needs: SDXL's (a UNet with the text_time add_embedding) are two.
func (d *Diffusers) openComponents() error {
	for _, comp := range []string{"unet", "vae"} {
		if err := d.openComponent(comp); err != nil {
			return err
		}
	}
	sdxl := false
	for name := range d.nets["unet"] {
		if strings.HasPrefix(name, "add_embedding.") {
			sdxl = true
			break
		}
	}
	_, noText := os.Stat(filepath.Join(d.dir, "text_encoder"))
	if sdxl && noText != nil {
		if _, err := os.Stat(filepath.Join(d.dir, "text_encoder_2")); err == nil {
			return fmt.Errorf("%w: an SDXL refiner (text_encoder_2/ only, aesthetic-score conditioning); sdgate serves SDXL base models", ErrSDXL)
		}
	}
	if err := d.openComponent("text_encoder"); err != nil {
		return err
	}
	if sdxl {
		if err := d.openComponent("text_encoder_2"); err != nil {
			return fmt.Errorf("SDXL UNet (add_embedding): %w", err)
		}
	}
	return nil
}

// openComponent opens comp's weights: the shards an index names, or one
// .safetensors file (a plain one before an .fp16 variant).
func (d *Diffusers) openComponent(comp string) error {
	entries, err := os.ReadDir(filepath.Join(d.dir, comp))
	if err != nil {
		return fmt.Errorf("%w: %s/: %w", ErrUnsupported, comp, err)
	}
	var single, fp16, index string
	pickle := ""
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".safetensors.index.json"):
			index = n
		case strings.HasSuffix(n, ".fp16.safetensors"):
			fp16 = n
		case strings.HasSuffix(n, ".safetensors"):
			single = n
		case strings.HasSuffix(n, ".bin") || strings.HasSuffix(n, ".ckpt") || strings.HasSuffix(n, ".pt"):
			pickle = n
		}
	}
	var names []string
	switch {
	case index != "": // the shards end in .safetensors too
		if names, err = shardNames(filepath.Join(d.dir, comp, index)); err != nil {
			return err
		}
	case single != "":
		names = []string{single}
	case fp16 != "":
		names = []string{fp16}
	case pickle != "":
		_, err := safetensors.Open(filepath.Join(d.dir, comp, pickle)) // the refusal and its advice
		return err
	default:
		return fmt.Errorf("%w: %s/ has no .safetensors weights", ErrUnsupported, comp)
	}
	byName := map[string]*safetensors.File{}
	for _, n := range names {
		f, err := safetensors.Open(filepath.Join(d.dir, comp, n))
		if err != nil {
			return err
		}
		d.files = append(d.files, f)
		for _, t := range f.Tensors() {
			if byName[t.Name] != nil {
				return fmt.Errorf("%w: %s/: tensor %q in two shards", ErrUnsupported, comp, t.Name)
			}
			byName[t.Name] = f
		}
	}
	d.nets[comp] = byName
	return nil
}

// shardNames reads the shard files a safetensors index names.
func shardNames(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsupported, path, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range idx.WeightMap {
		if n != filepath.Base(n) || !strings.HasSuffix(n, ".safetensors") {
			return nil, fmt.Errorf("%w: %s names shard %q", ErrUnsupported, path, n)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (d *Diffusers) info(comp, name string) (safetensors.Info, bool) {
	f := d.nets[comp][name]
	if f == nil {
		return safetensors.Info{}, false
	}
	return f.Info(name)
}

// detect reads the family from the shapes and the prediction type from
// scheduler/scheduler_config.json.
func (d *Diffusers) detect(opts Options) error {
	convIn, ok := d.info("unet", "conv_in.weight")
	if !ok || len(convIn.Shape) != 4 {
		return fmt.Errorf("%w: unet/ has no conv_in.weight", ErrUnsupported)
	}
	switch convIn.Shape[1] {
	case 4:
	case 9:
		d.Inpaint = true
	default:
		return fmt.Errorf("%w: the UNet takes %d input channels (4 and 9, inpainting, are supported)", ErrUnsupported, convIn.Shape[1])
	}
	tok, ok := d.info("text_encoder", "text_model.embeddings.token_embedding.weight")
	if !ok || len(tok.Shape) != 2 {
		return fmt.Errorf("%w: text_encoder/ has no text_model.embeddings.token_embedding.weight", ErrUnsupported)
	}
	d.Vocab = tok.Shape[0]
	for name := range d.nets["unet"] {
		if k, ok := d.info("unet", name); ok && strings.HasSuffix(name, ".attn2.to_k.weight") && len(k.Shape) == 2 {
			d.ContextDim = k.Shape[1]
			break
		}
	}
	switch {
	case d.nets["text_encoder_2"] != nil:
		d.Family = FamilySDXL
	case tok.Shape[1] == 1024:
		d.Family = FamilySD2
	default:
		d.Family = FamilySD1
	}
	if opts.Family != "" && opts.Family != FamilyAuto && opts.Family != d.Family {
		return fmt.Errorf("%w: --family %s, but the folder is %s", ErrUnsupported, opts.Family, d.Family)
	}
	d.Prediction = opts.Prediction
	if d.Prediction == "" || d.Prediction == "auto" {
		var sc struct {
			PredictionType string `json:"prediction_type"`
		}
		data, err := os.ReadFile(filepath.Join(d.dir, "scheduler", "scheduler_config.json"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			if err := json.Unmarshal(data, &sc); err != nil {
				return fmt.Errorf("%w: scheduler_config.json: %v", ErrUnsupported, err)
			}
		}
		d.Prediction = PredictEpsilon
		if sc.PredictionType == PredictV {
			d.Prediction = PredictV
		}
	}
	return nil
}

// resolve finds the file and source of a graph tensor.
func (d *Diffusers) resolve(net, name string) (string, *safetensors.File, source, error) {
	comp, ok := diffusersComponents[net]
	if !ok {
		return "", nil, source{}, fmt.Errorf("%w: unknown network %q", ErrMapping, net)
	}
	src := source{key: name, part: -1}
	if comp == "vae" {
		src = diffusersVAESource(func(k string) bool { return d.nets[comp][k] != nil }, name)
	}
	f := d.nets[comp][src.key]
	if f == nil {
		return comp, nil, src, fmt.Errorf("%w %s/%q (for %s %s)", ErrMissing, comp, src.key, net, name)
	}
	return comp, f, src, nil
}

// Check implements models/synth's Weights.
func (d *Diffusers) Check(net, name string, shape []int64) error {
	_, f, src, err := d.resolve(net, name)
	if err != nil {
		return err
	}
	_, err = sourceShape(f, src, net, name, shape)
	return err
}

// Float32 implements models/synth's Weights.
func (d *Diffusers) Float32(net, name string, shape []int64) ([]float32, error) {
	comp, f, src, err := d.resolve(net, name)
	if err != nil {
		return nil, err
	}
	if _, err := sourceShape(f, src, net, name, shape); err != nil {
		return nil, err
	}
	vals, err := f.Float32(src.key)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.used[comp+"/"+src.key] = true
	d.mu.Unlock()
	return vals, nil
}

// Unused lists the folder's tensors nothing has read, as component/name.
func (d *Diffusers) Unused() []Unused {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Unused
	for comp, names := range d.nets {
		for name := range names {
			if !d.used[comp+"/"+name] {
				reason := ""
				if strings.HasSuffix(name, "embeddings.position_ids") {
					reason = "position ids (0..76, implied)"
				}
				out = append(out, Unused{Key: comp + "/" + name, Reason: reason})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Close closes every weights file.
func (d *Diffusers) Close() error {
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
