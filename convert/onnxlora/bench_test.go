package onnxlora

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/models/synth"
)

// BenchmarkLoadMerge merges a rank-32 LoRA on the UNet's transformer
// projections (kohya's default modules) into the UNet graph as a variant
// loads: fp16 weights in model.onnx_data, as large exports keep them. The
// sd15 case has SD 1.5's shapes (writes 2 GB first; not in -short). MB/s
// counts the adapted weights' bytes; peak-RSS-MB is the process's.
func BenchmarkLoadMerge(b *testing.B) {
	for _, preset := range []string{"tiny", "sd15"} {
		b.Run(preset, func(b *testing.B) {
			if preset == "sd15" && testing.Short() {
				b.Skip("sd15 writes 2 GB: not in -short")
			}
			opts := synth.Options{Preset: preset, FP16: true, ExternalData: true}
			dir := b.TempDir()
			if _, err := synth.Write(context.Background(), dir, opts, nil); err != nil {
				b.Fatal(err)
			}
			params, err := synth.Params(opts)
			if err != nil {
				b.Fatal(err)
			}
			var specs []lora.Spec
			var adaptedBytes int64
			for _, p := range params {
				if p.Net == "unet" && (strings.HasSuffix(p.Name, ".to_q.weight") || strings.HasSuffix(p.Name, ".to_k.weight") ||
					strings.HasSuffix(p.Name, ".to_v.weight") || strings.HasSuffix(p.Name, ".to_out.0.weight") ||
					strings.HasSuffix(p.Name, ".proj_in.weight") || strings.HasSuffix(p.Name, ".proj_out.weight") ||
					strings.HasSuffix(p.Name, ".ff.net.0.proj.weight") || strings.HasSuffix(p.Name, ".ff.net.2.weight")) {
					specs = append(specs, lora.Spec{Net: p.Net, Name: p.Name, Shape: p.Shape})
					n := int64(2)
					for _, d := range p.Shape {
						n *= d
					}
					adaptedBytes += n
				}
			}
			l, err := lora.Synthesize(specs, 32, 16, 1)
			if err != nil {
				b.Fatal(err)
			}
			netDir := filepath.Join(dir, "unet")
			model, err := os.ReadFile(filepath.Join(netDir, "model.onnx"))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(adaptedBytes)
			b.ResetTimer()
			for range b.N {
				out, rep, err := Merge(model, netDir, "unet", true, lora.Scaled{LoRA: l, Scale: 0.8})
				if err != nil || rep.Merged != len(l.Modules) {
					b.Fatalf("%+v %v", rep, err)
				}
				b.ReportMetric(float64(len(out))/1e6, "out-MB")
			}
			b.StopTimer()
			b.ReportMetric(float64(len(l.Modules)), "modules")
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB") // Linux reports kB
			}
		})
	}
}
