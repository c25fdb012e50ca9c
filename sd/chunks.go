package sd

import "github.com/sdgate/sdgate/sd/spec"

// Long prompts. CLIP reads 77 tokens; like AUTOMATIC1111 and ComfyUI, a
// longer prompt is cut into windows of 75 tokens (clip.EncodeChunks), each
// encoded on its own, and the embeddings are joined on the token axis: the
// UNet's cross-attention takes any number of tokens. The negative prompt
// gets as many windows, padded with empty ones, since both condition one
// batch. SD 1.x and SD 2.x share this path; SDXL's two encoders will too.

// MaxPromptChunks is spec.MaxPromptChunks.
const MaxPromptChunks = spec.MaxPromptChunks

// promptText is a job's prompt and negative prompt as text-encoder rows:
// [negative windows..., prompt windows...] with guidance, else the prompt's.
type promptText struct {
	rows      [][]int
	windows   int // rows per prompt
	kept      string
	truncated bool
}

// promptChunks is how many windows the UNet takes: MaxPromptChunks when
// its token axis is symbolic; exactly sequence/77 when an export fixed it.
func (m *Model) promptChunks() (most int, exact bool) {
	if s, l := m.unet.sequence, m.textEncoder.length; s > 0 && l > 0 {
		return max(1, int(s/l)), true
	}
	return MaxPromptChunks, false
}

func (m *Model) promptWindows(j job) (promptText, error) {
	most, exact := m.promptChunks()
	pos, err := m.tokenizer.EncodeChunks(j.Prompt, most)
	if err != nil {
		return promptText{}, paramErr("prompt", "%v", err)
	}
	groups := [][][]int{pos.IDs}
	if j.cfg {
		neg, err := m.tokenizer.EncodeChunks(j.NegativePrompt, most)
		if err != nil {
			return promptText{}, paramErr("negative_prompt", "%v", err)
		}
		groups = [][][]int{neg.IDs, pos.IDs}
	}
	windows := most
	if !exact {
		windows = 0
		for _, g := range groups {
			windows = max(windows, len(g))
		}
	}
	t := promptText{windows: windows, kept: pos.Kept, truncated: pos.Truncated}
	for _, g := range groups {
		t.rows = append(t.rows, g...)
		for range windows - len(g) {
			t.rows = append(t.rows, m.tokenizer.EmptyChunk())
		}
	}
	return t, nil
}
