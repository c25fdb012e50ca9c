package sd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFamilyOf: whatever model_index.json and sdgate.json hold, the family
// check and the decoder folder name answer a family or ErrBadModel, never
// panic, and never name a folder outside the model.
func FuzzFamilyOf(f *testing.F) {
	for _, seed := range []string{
		`{"_class_name":"ORTStableDiffusionXLPipeline","force_zeros_for_empty_prompt":false}`,
		`{"_class_name":"StableDiffusionXLImg2ImgPipeline","requires_aesthetics_score":true,"text_encoder":[null,null]}`,
		`{"_class_name":"StableDiffusion3Pipeline","text_encoder_3":["transformers","T5EncoderModel"]}`,
		`{"_class_name":"FluxPipeline"}`,
		`{"_class_name":"OnnxStableDiffusionPipeline"}`,
		`{"text_encoder":[1]}`, `{"text_encoder":"x"}`, `[]`, `{`, ``,
	} {
		f.Add(seed, `{"vae_decoder":"vae_decoder_fp32"}`)
	}
	f.Add(`{}`, `{"vae_decoder":"../x"}`)
	f.Add(`{}`, `{"vae_decoder":7}`)
	f.Fuzz(func(t *testing.T, index, manifest string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(index), 0o644)
		os.WriteFile(filepath.Join(dir, "sdgate.json"), []byte(manifest), 0o644)
		os.Mkdir(filepath.Join(dir, "unet"), 0o755)
		if _, _, err := familyOf(dir); err != nil && !errors.Is(err, ErrBadModel) {
			t.Fatalf("familyOf: %v, want ErrBadModel", err)
		}
		name, err := vaeDecoderFolder(dir)
		if err != nil {
			if !errors.Is(err, ErrBadModel) {
				t.Fatalf("vaeDecoderFolder: %v", err)
			}
			return
		}
		if rel, err := filepath.Rel(dir, filepath.Join(dir, name)); err != nil || rel != name || filepath.Dir(rel) != "." {
			t.Fatalf("decoder folder %q leaves the model", name)
		}
	})
}
