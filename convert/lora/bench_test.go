package lora_test

import (
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/models/synth"
)

// BenchmarkMergeRank32 merges a rank-32 LoRA on the UNet's transformer
// projections and the text encoder's attention of the sd15 preset (SD
// 1.5's shapes); tiny runs in -short.
func BenchmarkMergeRank32(b *testing.B) {
	for _, preset := range []string{"tiny", "sd15"} {
		b.Run(preset, func(b *testing.B) {
			if preset == "sd15" && testing.Short() {
				b.Skip("sd15 holds 1 GB of weights: not in -short")
			}
			params, err := synth.Params(synth.Options{Preset: preset})
			if err != nil {
				b.Fatal(err)
			}
			var specs []lora.Spec
			var targets []*lora.Target
			for _, p := range params {
				n := p.Name
				if strings.HasSuffix(n, ".to_q.weight") || strings.HasSuffix(n, ".to_k.weight") || strings.HasSuffix(n, ".to_v.weight") ||
					strings.HasSuffix(n, ".to_out.0.weight") || strings.HasSuffix(n, "_proj.weight") {
					if p.Net != "unet" && p.Net != "text_encoder" {
						continue
					}
					vals, err := p.Values()
					if err != nil {
						b.Fatal(err)
					}
					specs = append(specs, lora.Spec{Net: p.Net, Name: n, Shape: p.Shape})
					targets = append(targets, &lora.Target{Net: p.Net, Name: n, Shape: p.Shape, Data: vals})
				}
			}
			l, err := lora.Synthesize(specs, 32, 16, 1)
			if err != nil {
				b.Fatal(err)
			}
			var elems int64
			for _, t := range targets {
				elems += int64(len(t.Data))
			}
			b.SetBytes(4 * elems)
			b.ResetTimer()
			for range b.N {
				if _, err := lora.Merge(targets, true, lora.Scaled{LoRA: l, Scale: 0.5}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(l.Modules)), "modules")
		})
	}
}
