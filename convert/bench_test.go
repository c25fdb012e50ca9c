package convert_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// BenchmarkImport measures `sdgate import`'s work on a checkpoint the
// benchmark writes first: the sd15 case has SD 1.5's shapes (2.1 GB in
// fp16). MB/s counts checkpoint bytes; peak-RSS-MB is the process's
// high-water mark, which streaming keeps near one tensor's size.
func BenchmarkImport(b *testing.B) {
	for _, preset := range []string{"tiny", "sd15"} {
		b.Run(preset, func(b *testing.B) {
			if preset == "sd15" && testing.Short() {
				b.Skip("sd15 writes 4 GB: not in -short")
			}
			opts := synth.Options{Preset: preset, FP16: true}
			path := filepath.Join(b.TempDir(), preset+".safetensors")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := convert.WriteLDM(f, synthTensors(b, opts), convert.WriteOptions{DType: safetensors.F16}); err != nil {
				b.Fatal(err)
			}
			f.Close()
			info, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(info.Size())
			b.ResetTimer()
			for i := range b.N {
				ck, err := convert.OpenCheckpoint(path, convert.Options{})
				if err != nil {
					b.Fatal(err)
				}
				imp := opts
				imp.Weights = ck
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				if _, err := synth.Write(context.Background(), dir, imp, nil); err != nil {
					b.Fatal(err)
				}
				ck.Close()
				b.StopTimer()
				os.RemoveAll(dir) // the disk holds one imported folder at a time
				b.StartTimer()
			}
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB") // Linux reports kB
			}
		})
	}
}
