package convert

import (
	"fmt"
	"strings"
)

// LDMUNetModules maps the LDM (SGM) module paths of a UNet to the
// diffusers module paths given: modules are the graph's UNet module paths
// ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"), and the
// result maps "input_blocks.4.1.transformer_blocks.0.attn1.to_q" back to
// it. kohya's SDXL LoRAs name the UNet this way. The block numbering is
// unetSource's (the checkpoint import's); the layout it needs is read off
// the names themselves. A module with no LDM name is left out.
func LDMUNetModules(modules []string) (map[string]string, error) {
	named := make([]Tensor, len(modules))
	for i, m := range modules {
		named[i] = Tensor{Net: "unet", Name: m + ".weight"}
	}
	l, _ := layoutFromNames(named) // WriteLDM's reading of the layout
	if l.layers == 0 {
		return nil, fmt.Errorf("%w: no down_blocks.0.resnets.N among %d UNet modules: cannot number LDM blocks", ErrMapping, len(modules))
	}
	out := make(map[string]string, len(modules))
	for _, m := range modules {
		ldm, err := unetSource(m+".weight", l)
		if err != nil {
			continue
		}
		ldm = strings.TrimSuffix(ldm, ".weight")
		if prev, dup := out[ldm]; dup && prev != m {
			return nil, fmt.Errorf("%w: unet %q and %q share the LDM name %q", ErrMapping, prev, m, ldm)
		}
		out[ldm] = m
	}
	return out, nil
}
