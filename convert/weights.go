package convert

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sdgate/sdgate/convert/safetensors"
)

// vaeFile is where the VAE's tensors are: the checkpoint (prefix
// first_stage_model.), a standalone LDM VAE (no prefix) or a diffusers
// AutoencoderKL file (diffusers names already).
type vaeFile struct {
	f         *safetensors.File
	prefix    string
	diffusers bool
	levels    int
}

func newVAEFile(f *safetensors.File) (*vaeFile, error) {
	has := func(k string) bool { _, ok := f.Info(k); return ok }
	switch {
	case has("decoder.up_blocks.0.resnets.0.conv1.weight"):
		return &vaeFile{f: f, diffusers: true}, nil
	case has("decoder.up.0.block.0.conv1.weight"):
		return &vaeFile{f: f, levels: countLevels(f, "decoder.up.")}, nil
	case has(vaePrefix + "decoder.up.0.block.0.conv1.weight"):
		return &vaeFile{f: f, prefix: vaePrefix, levels: countLevels(f, vaePrefix+"decoder.up.")}, nil
	}
	return nil, fmt.Errorf("%w: no VAE decoder (decoder.up.0.block.0.conv1.weight or decoder.up_blocks.0.resnets.0.conv1.weight)", ErrUnsupported)
}

// resolve finds the file and source of a graph tensor.
func (c *Checkpoint) resolve(net, name string) (*safetensors.File, source, error) {
	switch net {
	case "unet":
		key, err := unetSource(name, c.unet)
		if err != nil {
			return nil, source{}, err
		}
		key = unetPrefix + key
		if c.EMA {
			key = emaKey(key)
		}
		return c.f, source{key: key, part: -1}, nil
	case "text_encoder":
		switch c.Family {
		case FamilySD2:
			src, err := openCLIPSource(name)
			src.key = sd2Text + src.key
			return c.f, src, err
		case FamilySDXL:
			return c.f, source{key: sdxlText1 + name, part: -1}, nil
		}
		if c.oldText {
			return c.f, source{key: sd1Text + strings.TrimPrefix(name, "text_model."), part: -1}, nil
		}
		return c.f, source{key: sd1Text + name, part: -1}, nil
	case "text_encoder_2":
		if c.Family != FamilySDXL {
			break
		}
		src, err := openCLIPSource(name)
		src.key = sdxlText2 + src.key
		return c.f, src, err
	case "vae_decoder", "vae_encoder":
		v := c.vae
		if v.diffusers {
			has := func(k string) bool { _, ok := v.f.Info(k); return ok }
			return v.f, diffusersVAESource(has, name), nil
		}
		src, err := vaeSource(name, v.levels)
		src.key = v.prefix + src.key
		return v.f, src, err
	}
	return nil, source{}, fmt.Errorf("%w: unknown network %q", ErrMapping, net)
}

// diffusersVAESource maps a name onto a diffusers VAE file, which may use
// the attention names of diffusers before 0.14 (query, key, value,
// proj_attn); has says whether the file holds a name.
func diffusersVAESource(has func(string) bool, name string) source {
	if has(name) {
		return source{key: name, part: -1, conv1x1: strings.Contains(name, ".attentions.")}
	}
	for _, r := range [][2]string{{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}} {
		if strings.Contains(name, r[0]) {
			return source{key: strings.Replace(name, r[0], r[1], 1), part: -1, conv1x1: true}
		}
	}
	return source{key: name, part: -1}
}

// Check implements models/synth's Weights: the tensor exists with shape.
func (c *Checkpoint) Check(net, name string, shape []int64) error {
	f, src, err := c.resolve(net, name)
	if err != nil {
		return err
	}
	_, err = sourceShape(f, src, net, name, shape)
	return err
}

// sourceShape checks the checkpoint tensor behind src against the shape
// the graph wants, after src's transform, and returns its description.
func sourceShape(f *safetensors.File, src source, net, name string, want []int64) (safetensors.Info, error) {
	t, ok := f.Info(src.key)
	if !ok {
		return t, fmt.Errorf("%w %q (for %s %s)", ErrMissing, src.key, net, name)
	}
	switch t.DType {
	case safetensors.F16, safetensors.BF16, safetensors.F32, safetensors.F64:
	default:
		return t, fmt.Errorf("%w: %q is %s, not a float tensor", ErrUnsupported, src.key, t.DType)
	}
	got := slices.Clone(t.Shape)
	if src.conv1x1 && len(got) == 4 && got[2] == 1 && got[3] == 1 {
		got = got[:2]
	}
	if src.transpose {
		if len(got) != 2 {
			return t, fmt.Errorf("%w: %q %v is not a matrix", ErrShape, src.key, t.Shape)
		}
		got[0], got[1] = got[1], got[0]
	}
	if src.part >= 0 {
		if len(got) == 0 || got[0]%3 != 0 {
			return t, fmt.Errorf("%w: %q %v cannot be split in q, k and v", ErrShape, src.key, t.Shape)
		}
		got[0] /= 3
	}
	if !slices.Equal(got, want) {
		return t, fmt.Errorf("%w: %q is %v, %s %s needs %v", ErrShape, src.key, t.Shape, net, name, want)
	}
	return t, nil
}

// Float32 implements models/synth's Weights: the tensor's values in
// torch's layout (q, k or v cut out of in_proj; 1x1 convs as matrices).
func (c *Checkpoint) Float32(net, name string, shape []int64) ([]float32, error) {
	f, src, err := c.resolve(net, name)
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
	if src.part >= 0 {
		n := len(vals) / 3
		vals = slices.Clone(vals[src.part*n : (src.part+1)*n])
	}
	if src.transpose { // sourceShape saw a matrix: shape is its transpose
		vals = transposed(vals, shape[1], shape[0])
	}
	c.mu.Lock()
	if c.used[f] == nil {
		c.used[f] = map[string]bool{}
	}
	c.used[f][src.key] = true
	c.mu.Unlock()
	return vals, nil
}

// scheduleBuffers are the training schedule LDM saves with the model; the
// folder's scheduler_config.json carries the same schedule.
var scheduleBuffers = map[string]bool{
	"betas": true, "alphas_cumprod": true, "alphas_cumprod_prev": true, "sqrt_alphas_cumprod": true,
	"sqrt_one_minus_alphas_cumprod": true, "log_one_minus_alphas_cumprod": true, "sqrt_recip_alphas_cumprod": true,
	"sqrt_recipm1_alphas_cumprod": true, "posterior_variance": true, "posterior_log_variance_clipped": true,
	"posterior_mean_coef1": true, "posterior_mean_coef2": true, "logvar": true, "lvlb_weights": true,
}

// unusedReason explains why a tensor was not needed ("" when unknown).
// Called with c.mu held.
func (c *Checkpoint) unusedReason(f *safetensors.File, key string) string {
	if f != c.f {
		return "not part of the VAE graphs"
	}
	switch {
	case scheduleBuffers[key]:
		return "training schedule (scheduler_config.json holds it)"
	case key == emaPrefix+"decay" || key == emaPrefix+"num_updates":
		return "EMA bookkeeping"
	case strings.HasPrefix(key, emaPrefix) && !c.EMA:
		return "EMA weights not used"
	case strings.HasPrefix(key, unetPrefix) && c.EMA:
		return "training weights (the EMA weights are used)"
	case key == "v_pred":
		return "v-prediction marker"
	case strings.HasSuffix(key, "embeddings.position_ids"):
		return "position ids (0..76, implied)"
	case strings.HasPrefix(key, vaePrefix) && c.vae.f != c.f:
		return "replaced by --vae"
	case strings.HasPrefix(key, vaePrefix+"loss."):
		return "VAE training loss"
	case key == sd2Text+"text_projection" || key == sd2Text+"logit_scale":
		return "OpenCLIP projection, unused by SD 2"
	case key == sdxlText2+"logit_scale":
		return "OpenCLIP's contrastive logit scale, unused by SDXL"
	case c.Family == FamilySD2 && strings.HasPrefix(key, sd2Text+"transformer.resblocks."):
		return "OpenCLIP's last layer: SD 2 uses the penultimate one"
	}
	return ""
}

// transposed turns a row-major [rows, cols] matrix into [cols, rows].
func transposed(m []float32, rows, cols int64) []float32 {
	out := make([]float32, len(m))
	for r := range rows {
		for c, v := range m[r*cols : (r+1)*cols] {
			out[int64(c)*rows+r] = v
		}
	}
	return out
}
