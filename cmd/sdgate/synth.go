package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdgate/sdgate/models/synth"
)

func runSynth(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		fp16     optionalBool
		preset   = fs.String("preset", "tiny", "model size: "+strings.Join(synth.Presets(), ", "))
		out      = fs.String("out", "", "model folder to create (must be absent or empty)")
		ids64    = fs.Bool("input-ids-int64", false, "text_encoder input_ids as int64 (optimum) instead of int32")
		timestep = fs.String("timestep", synth.TimestepFloatBatch, "UNet timestep input: "+
			strings.Join([]string{synth.TimestepFloatBatch, synth.TimestepInt64Batch, synth.TimestepFloatScalar}, ", "))
		latentParams = fs.Bool("latent-parameters", false, "vae_encoder outputs latent_parameters (mean and logvar) instead of latent_sample")
		external     = fs.Bool("external-data", false, "put every network's weights in model.onnx_data")
		inpaint      = fs.Bool("inpaint", false, "UNet with 9 input channels (inpainting)")
		noEncoder    = fs.Bool("no-vae-encoder", false, "leave out vae_encoder/")
		lcm          = fs.Bool("lcm", false, "latent consistency model: UNet with timestep_cond, LCMScheduler")
		turbo        = fs.Bool("turbo", false, "adversarially distilled (SDXL-Turbo, SD-Turbo): trailing timesteps, 1 step, guidance 0")
		seed         = fs.Uint64("seed", 0, "seed of the random weights")
		clipBPE      = fs.String("clip-bpe", "", "OpenAI's bpe_simple_vocab_16e6.txt(.gz): CLIP's real 49408-token vocabulary")
		prediction   = fs.String("prediction", "", "epsilon or v_prediction (default: the preset's; sd2 presets predict v)")
		checkpoint   = fs.String("checkpoint", "", "also write the weights as an LDM-layout .safetensors checkpoint (what sdgate import reads)")
		loraFile     = fs.String("lora", "", "also write a kohya-format LoRA for the model (random, from the seed; kohya's SDXL names for the sdxl presets)")
		loraRank     = fs.Int64("lora-rank", 4, "rank of the --lora LoRA")
		attention    = fs.String("attention", "plain", attentionUsage)
	)
	fs.Var(&fp16, "fp16", "float16 weights, inputs and outputs (default: true for sd15, false for tiny)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("synth: --out is required")
	}
	fused, err := parseAttention(*attention)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	opts := synth.Options{
		FusedAttention:   fused,
		Preset:           *preset,
		FP16:             fp16.value,
		InputIDs64:       *ids64,
		LatentParameters: *latentParams,
		ExternalData:     *external,
		Inpaint:          *inpaint,
		NoVAEEncoder:     *noEncoder,
		LCM:              *lcm,
		Turbo:            *turbo,
		Timestep:         *timestep,
		Seed:             *seed,
		ClipBPE:          *clipBPE,
		Prediction:       *prediction,
	}
	if !fp16.set {
		opts.FP16 = *preset == "sd15" || *preset == "sd2" || *preset == "sdxl" // the full-size presets exist for GPU benchmarks, which run fp16
	}
	rep, err := synth.Write(ctx, *out, opts, stderr)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	printSynthReport(stdout, rep, opts, fmt.Sprintf("seed %d", opts.Seed))
	if *checkpoint != "" {
		if err := writeSynthCheckpoint(*checkpoint, opts); err != nil {
			return fmt.Errorf("synth: checkpoint: %w", err)
		}
		fmt.Fprintf(stdout, "  checkpoint %s\n", *checkpoint)
	}
	if *loraFile != "" {
		n, err := writeSynthLoRA(*loraFile, opts, *loraRank)
		if err != nil {
			return fmt.Errorf("synth: lora: %w", err)
		}
		fmt.Fprintf(stdout, "  lora %s: %d modules, rank %d\n", *loraFile, n, *loraRank)
	}
	return nil
}

// printSynthReport describes a written folder; origin says where its
// weights came from ("seed 4").
func printSynthReport(w io.Writer, rep synth.Report, opts synth.Options, origin string) {
	precision := "fp32"
	if opts.FP16 {
		precision = "fp16"
	}
	fmt.Fprintf(w, "wrote %s: preset %s, %s, %s, in %s\n",
		rep.Dir, rep.Preset, precision, origin, rep.Elapsed.Round(time.Millisecond))
	for _, n := range rep.Networks {
		note := ""
		if n.ExternalData {
			note = " (weights in model.onnx_data)"
		}
		fmt.Fprintf(w, "  %-13s %15s parameters%s\n", n.Name, groupThousands(n.Params), note)
	}
	fmt.Fprintf(w, "  %-13s %15s parameters\n", "total", groupThousands(rep.Params()))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range rep.Files {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Path, humanBytes(f.Size))
	}
	fmt.Fprintf(tw, "  %d files\t%s\n", len(rep.Files), humanBytes(rep.Bytes()))
	tw.Flush()
}

// optionalBool is a boolean flag that knows whether it was given, so a
// default can depend on other flags (--fp16 defaults by preset).
type optionalBool struct{ value, set bool }

func (b *optionalBool) String() string { return strconv.FormatBool(b.value) }

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.value, b.set = v, true
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// groupThousands writes n as 859,520,964.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// humanBytes writes a size in decimal units: 1.72 GB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), []string{"kB", "MB", "GB", "TB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.2f %s", v, suffix[i])
}
