package sd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sdgate/sdgate/sd/clip"
	"github.com/sdgate/sdgate/sd/scheduler"
	"github.com/sdgate/sdgate/sd/spec"
)

// SDXL (base 1.0, Turbo and the inpainting UNet) as diffusers' and
// optimum's StableDiffusionXLPipeline run it: two text encoders whose
// penultimate hidden states are joined along the width, the pooled and
// projected output of the second one (text_embeds), and time_ids
// (original size, crop top-left, target size; height before width) as the
// UNet's added conditioning.

// xlParts is what an SDXL folder has beyond an SD 1.x/2.x one.
type xlParts struct {
	tok1, tok2 *clip.Tokenizer
	enc1, enc2 *xlEncoder
	// forceZeros: an empty negative prompt means zero embeddings (hidden and
	// pooled), not the encoded empty string (model_index.json's
	// force_zeros_for_empty_prompt; diffusers defaults it to true).
	forceZeros bool
}

// xlIndex is the part of model_index.json that decides SDXL's behaviour.
type xlIndex struct {
	ClassName                string `json:"_class_name"`
	ForceZerosForEmptyPrompt *bool  `json:"force_zeros_for_empty_prompt"`
	RequiresAestheticsScore  bool   `json:"requires_aesthetics_score"`
	TextEncoder              []any  `json:"text_encoder"`
	TextEncoder2             []any  `json:"text_encoder_2"`
	Transformer              []any  `json:"transformer"`
	TextEncoder3             []any  `json:"text_encoder_3"`
}

// familyOf tells the family of a folder from model_index.json and the
// folders it holds, or refuses the ones sdgate cannot run, naming the file
// that says so.
func familyOf(dir string) (string, *xlIndex, error) {
	path := filepath.Join(dir, "model_index.json")
	var idx xlIndex
	if err := readJSONFile(path, &idx, true); err != nil {
		return "", nil, err
	}
	c := idx.ClassName
	switch {
	case strings.Contains(c, "Flux") || strings.Contains(c, "StableDiffusion3") || idx.TextEncoder3 != nil || idx.Transformer != nil:
		fam := "SD3"
		if strings.Contains(c, "Flux") {
			fam = "Flux"
		}
		return "", nil, fmt.Errorf("%w: %s: pipeline %q is the %s family (a diffusion transformer), which sdgate does not run; use an SD 1.x, 2.x or SDXL folder",
			ErrBadModel, path, c, fam)
	case !strings.Contains(c, "XL") && !exists(filepath.Join(dir, "text_encoder_2")):
		if exists(filepath.Join(dir, "unet")) {
			return "", nil, nil // SD 1.x / 2.x: the tokenizer's pad tells them apart (readSpec)
		}
	}
	if idx.RequiresAestheticsScore || !present(idx.TextEncoder, filepath.Join(dir, "text_encoder")) {
		return "", nil, fmt.Errorf("%w: %s: pipeline %q is an SDXL refiner (one text encoder, aesthetic-score time_ids), which sdgate does not run; use SDXL base or Turbo",
			ErrBadModel, path, c)
	}
	return spec.FamilySDXL, &idx, nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// present: model_index.json lists the component (not [null, null]) or,
// when it is silent, the folder exists.
func present(entry []any, folder string) bool {
	if entry != nil {
		return len(entry) == 2 && entry[0] != nil
	}
	return exists(folder)
}

// inspectXL reads SDXL's two tokenizers and text encoders and checks them
// against the UNet's inputs.
func (m *Model) inspectXL(idx *xlIndex) error {
	dir := m.Dir
	x := &xlParts{forceZeros: idx.ForceZerosForEmptyPrompt == nil || *idx.ForceZerosForEmptyPrompt}
	var err error
	if x.tok1, err = clip.Load(filepath.Join(dir, "tokenizer")); err != nil {
		return fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	if x.tok2, err = clip.Load(filepath.Join(dir, "tokenizer_2")); err != nil {
		return fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	n1, err := inspectNetwork(dir, "text_encoder")
	if err != nil {
		return err
	}
	if x.enc1, err = newXLEncoder(n1, false); err != nil {
		return err
	}
	n2, err := inspectNetwork(dir, "text_encoder_2")
	if err != nil {
		return err
	}
	if x.enc2, err = newXLEncoder(n2, true); err != nil {
		return err
	}
	u := m.unet
	if u.textEmbedsDim == 0 {
		return fmt.Errorf("%w: %s: an SDXL UNet takes text_embeds and time_ids; this one has neither", ErrBadModel, u.path)
	}
	if w := x.enc1.hidden + x.enc2.hidden; u.hidden > 0 && u.hidden != w {
		return fmt.Errorf("%w: %s: text encoders give %d+%d wide states but the UNet's encoder_hidden_states is %d wide",
			ErrBadModel, dir, x.enc1.hidden, x.enc2.hidden, u.hidden)
	}
	if u.textEmbedsDim > 0 && u.textEmbedsDim != x.enc2.pooledDim {
		return fmt.Errorf("%w: %s: text_encoder_2's text_embeds is %d wide but the UNet's text_embeds is %d",
			ErrBadModel, dir, x.enc2.pooledDim, u.textEmbedsDim)
	}
	if u.timeIDs != xlTimeIDs {
		return fmt.Errorf("%w: %s: time_ids has %d values; SDXL base takes %d (%d is a refiner's aesthetic-score form)",
			ErrBadModel, u.path, u.timeIDs, xlTimeIDs, xlTimeIDs-1)
	}
	for _, c := range []struct {
		tok *clip.Tokenizer
		enc *xlEncoder
	}{{x.tok1, x.enc1}, {x.tok2, x.enc2}} {
		if int(c.enc.length) != c.tok.MaxLength() {
			return fmt.Errorf("%w: %s: tokenizer pads to %d tokens but %s takes %d", ErrBadModel, dir, c.tok.MaxLength(), c.enc.name, c.enc.length)
		}
	}
	if x.enc1.length != x.enc2.length {
		return fmt.Errorf("%w: %s: the text encoders take %d and %d tokens", ErrBadModel, dir, x.enc1.length, x.enc2.length)
	}
	m.xl, m.tokenizer = x, x.tok1
	return nil
}

// xlTimeIDs is the length of SDXL base's time_ids.
const xlTimeIDs = 6

// addedCond is an SDXL UNet's added conditioning for the whole batch, in
// the order of encoder_hidden_states.
type addedCond struct {
	textEmbeds []float32 // [batch, pooled width]
	timeIDs    []float32 // [batch, 6]
}

// timeIDs is diffusers' _get_add_time_ids for one image generated at
// width x height with no crop: original_size + crops_coords_top_left +
// target_size, each (height, width) ordered. Original and target are the
// generated size, diffusers' default when the caller names neither.
func timeIDs(width, height int) []float32 {
	h, w := float32(height), float32(width)
	return []float32{h, w, 0, 0, h, w}
}

// xlConditioning is conditioning for SDXL: per row, CLIP-L's and bigG's
// penultimate states side by side ([tokens, w1+w2]), bigG's text_embeds
// and the time ids; rows [uncond x N, cond x N] with guidance.
func (m *Model) xlConditioning(j job, clock *ortClock) (conditioning, error) {
	x := m.xl
	pos1, err := x.tok1.EncodePadded(j.Prompt)
	if err != nil {
		return conditioning{}, paramErr("prompt", "%v", err)
	}
	pos2, err := x.tok2.EncodePadded(j.Prompt)
	if err != nil {
		return conditioning{}, paramErr("prompt", "%v", err)
	}
	rows1, rows2 := [][]int{pos1.IDs}, [][]int{pos2.IDs}
	zeroNeg := j.cfg && j.NegativePrompt == "" && x.forceZeros
	if j.cfg && !zeroNeg {
		neg1, err := x.tok1.EncodePadded(j.NegativePrompt)
		if err != nil {
			return conditioning{}, paramErr("negative_prompt", "%v", err)
		}
		neg2, err := x.tok2.EncodePadded(j.NegativePrompt)
		if err != nil {
			return conditioning{}, paramErr("negative_prompt", "%v", err)
		}
		rows1, rows2 = [][]int{neg1.IDs, pos1.IDs}, [][]int{neg2.IDs, pos2.IDs}
	}
	tokens := x.enc1.length
	w1, w2, pw := x.enc1.hidden, x.enc2.hidden, x.enc2.pooledDim
	n := len(rows1)
	h1 := make([]float32, int64(n)*tokens*w1)
	h2 := make([]float32, int64(n)*tokens*w2)
	pooled := make([]float32, int64(n)*pw)
	if err := clock.time(func() error { return x.enc1.encode(flatIDs(rows1), n, h1, nil) }); err != nil {
		return conditioning{}, err
	}
	if err := clock.time(func() error { return x.enc2.encode(flatIDs(rows2), n, h2, pooled) }); err != nil {
		return conditioning{}, err
	}
	encoded, pooledRows := joinStates(h1, h2, n, tokens, w1, w2), pooled
	if zeroNeg { // a zero row in front of the encoded prompt
		encoded = append(make([]float32, tokens*(w1+w2)), encoded...)
		pooledRows = append(make([]float32, pw), pooled...)
	}
	rows := len(encoded) / int(tokens*(w1+w2))
	per := int(tokens * (w1 + w2))
	ids := timeIDs(j.Width, j.Height)
	cond := conditioning{tokens: tokens, kept: pos1.Kept, truncated: pos1.Truncated || pos2.Truncated}
	cond.added = &addedCond{}
	for r := range rows {
		for range j.N {
			cond.hidden = append(cond.hidden, encoded[r*per:(r+1)*per]...)
			cond.added.textEmbeds = append(cond.added.textEmbeds, pooledRows[r*int(pw):(r+1)*int(pw)]...)
			cond.added.timeIDs = append(cond.added.timeIDs, ids...)
		}
	}
	cond.scheduler = m.schedulerName(j)
	return cond, nil
}

func flatIDs(rows [][]int) []int32 {
	var out []int32
	for _, r := range rows {
		for _, id := range r {
			out = append(out, int32(id))
		}
	}
	return out
}

// joinStates concatenates two [n, tokens, w] state tensors along the width:
// diffusers' torch.concat(prompt_embeds_list, dim=-1).
func joinStates(a, b []float32, n int, tokens, wa, wb int64) []float32 {
	out := make([]float32, 0, int64(n)*tokens*(wa+wb))
	for t := range int64(n) * tokens {
		out = append(out, a[t*wa:(t+1)*wa]...)
		out = append(out, b[t*wb:(t+1)*wb]...)
	}
	return out
}

// addedInputs reads the SDXL UNet's text_embeds and time_ids, both or
// neither.
func (u *unet) addedInputs() error {
	te, hasTE := u.input("text_embeds")
	ti, hasTI := u.input("time_ids")
	if !hasTE && !hasTI {
		return nil
	}
	if err := u.requireFloat(te, hasTE, "text_embeds", 2); err != nil {
		return err
	}
	if err := u.requireFloat(ti, hasTI, "time_ids", 2); err != nil {
		return err
	}
	if te.Dims[1] <= 0 {
		return u.bad("text_embeds has a symbolic width")
	}
	u.textEmbedsDim, u.textEmbedsType = te.Dims[1], te.Type
	u.timeIDs, u.timeIDsType = ti.Dims[1], ti.Type
	if u.timeIDs <= 0 {
		u.timeIDs = xlTimeIDs // symbolic: requires_aesthetics_score decides, and inspect refused refiners
	}
	return nil
}

// prepareAdded allocates and fills the added-conditioning tensors of an
// SDXL UNet (nothing for others).
func (r *unetRun) prepareAdded(added *addedCond) error {
	u, b := r.u, int64(r.batch)
	if u.textEmbedsDim == 0 {
		return nil
	}
	if added == nil || int64(len(added.textEmbeds)) != b*u.textEmbedsDim || int64(len(added.timeIDs)) != b*u.timeIDs {
		return fmt.Errorf("SDXL added conditioning does not fit a batch of %d", b)
	}
	var err error
	if r.textEmbeds, err = newFloatTensor(u.textEmbedsType, b, u.textEmbedsDim); err != nil {
		return err
	}
	r.textEmbeds.Store(added.textEmbeds)
	if r.timeIDs, err = newFloatTensor(u.timeIDsType, b, u.timeIDs); err != nil {
		return err
	}
	r.timeIDs.Store(added.timeIDs)
	return nil
}

// open creates both encoders' sessions, each computing only what SDXL reads.
func (x *xlParts) open(ctx context.Context, rt *Runtime, rewrite func(network, path string, model []byte) ([]byte, error)) error {
	for _, e := range []*xlEncoder{x.enc1, x.enc2} {
		data, err := rewritten(e.network, rewrite)
		if err != nil {
			return err
		}
		if err := e.open(ctx, rt, data, e.outputNames()...); err != nil {
			return err
		}
	}
	return nil
}

// family is the folder's family: SDXL as familyOf found, else SD 2.x when
// the tokenizer pads with something other than its end token (OpenCLIP's
// "!"), else SD 1.x.
func (m *Model) family(found string) string {
	switch {
	case found != "":
		return found
	case m.tokenizer.PadID() != m.tokenizer.EOS():
		return spec.FamilySD2
	}
	return spec.FamilySD1
}

// schedulerName is the name of the scheduler a job runs (resolve checked it).
func (m *Model) schedulerName(j job) string {
	sched, err := scheduler.New(j.Scheduler, m.schedConfig, j.Steps)
	if err != nil {
		return j.Scheduler
	}
	return sched.Name()
}
