package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// planLoRAs maps a request's loras onto the model's: every name must be a
// LoRA of its folder (400 on param loras otherwise). The registry checks
// again when it runs; here the cache key needs the digests first.
func planLoRAs(req compat.ImageGenerationRequest, info models.Info) ([]spec.LoRA, error) {
	loras := compat.SpecLoRAs(req.LoRAs)
	for _, l := range loras {
		if _, ok := info.LoRAs[l.Name]; !ok {
			return nil, &spec.ParamError{Param: "loras", Message: fmt.Sprintf("model %q has no LoRA %q", info.ID, l.Name)}
		}
	}
	return loras, nil
}

// loraRefs names each LoRA of a request by content: digest@scale, in
// request order (merges stack in that order). Cache keys and usage records
// carry them, so a LoRA file replaced under the same name keys apart.
func loraRefs(info models.Info, loras []spec.LoRA) []string {
	if len(loras) == 0 {
		return nil
	}
	refs := make([]string, len(loras))
	for i, l := range loras {
		refs[i] = "lora:" + info.LoRAs[l.Name].Digest + "@" + strconv.FormatFloat(l.Scale, 'g', -1, 64)
	}
	return refs
}

// withLoRAs adds a request's LoRAs to its cache key's extra knobs.
func withLoRAs(extra map[string]string, refs []string) map[string]string {
	if len(refs) == 0 {
		return extra
	}
	out := make(map[string]string, len(extra)+1)
	for k, v := range extra {
		out[k] = v
	}
	out["loras"] = strings.Join(refs, ",")
	return out
}
