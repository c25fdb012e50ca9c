package sd_test

import (
	"context"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

// BenchmarkSDXLvsTiny: sdxl-tiny against the SD 1.5 tiny preset end to end
// at the same latent size (128x128 images, 16x16 latents), 8 steps with
// guidance. xl/tiny is the time ratio (two text encoders, the added
// conditioning, one more UNet level and deeper transformers);
// xl-overhead-ratio is sdxl-tiny's pipeline time over its time inside ONNX
// Runtime (target <= 1.05, as for SD 1.5).
func BenchmarkSDXLvsTiny(b *testing.B) {
	tiny := loadModel(b, synth.Options{})
	xl := loadModel(b, synth.Options{Preset: "sdxl-tiny"})
	req := sd.Request{Prompt: "a lighthouse at dusk", Width: 128, Height: 128, Steps: 8, Guidance: 5, HasGuidance: true, Seed: 1, HasSeed: true}
	var tinyT, xlT, xlORT time.Duration
	for b.Loop() {
		r, err := tiny.Generate(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		tinyT += r.Total
		if r, err = xl.Generate(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		xlT, xlORT = xlT+r.Total, xlORT+r.ORT
	}
	n := float64(b.N)
	b.ReportMetric(float64(tinyT.Milliseconds())/n, "tiny-ms")
	b.ReportMetric(float64(xlT.Milliseconds())/n, "xl-ms")
	b.ReportMetric(float64(xlT)/float64(tinyT), "xl/tiny")
	b.ReportMetric(float64(xlT)/float64(xlORT), "xl-overhead-ratio")
}
