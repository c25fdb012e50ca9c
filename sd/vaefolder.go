package sd

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SDXL's VAE overflows in float16 (diffusers upcasts it: force_upcast in
// its config), so an fp16 SDXL export decodes to NaN or black. The loader
// takes the decoder's precision from its graph, so an fp32 vae_decoder
// beside an fp16 UNet runs in fp32 as it is; sdgate.json's "vae_decoder"
// can also name another folder of the model holding an fp32 (or fixed
// fp16) decoder, leaving the export's own vae_decoder/ untouched.

// vaeDecoderFolder is the folder name of the decoder to load: sdgate.json's
// vae_decoder when set, else vae_decoder. The name must be one plain
// folder inside the model: sdgate.json is the user's file, but a model
// folder can come from anywhere.
func vaeDecoderFolder(dir string) (string, error) {
	var fc struct {
		VAEDecoder string `json:"vae_decoder"`
	}
	path := filepath.Join(dir, "sdgate.json")
	if err := readJSONFile(path, &fc, false); err != nil {
		return "", err
	}
	name := fc.VAEDecoder
	if name == "" {
		return "vae_decoder", nil
	}
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) || filepath.IsAbs(name) {
		return "", fmt.Errorf("%w: %s: vae_decoder %q must name one folder inside the model", ErrBadModel, path, name)
	}
	return name, nil
}
