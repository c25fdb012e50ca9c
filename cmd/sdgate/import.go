package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/models/synth"
)

// clipVocab is the row count of CLIP's token embedding (SD 1.x, 2.x and both SDXL encoders).
const clipVocab = 49408

func runImport(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sdgate import CHECKPOINT.safetensors --out DIR [flags]")
		fs.PrintDefaults()
	}
	var (
		checkpoint = fs.String("checkpoint", "", "the .safetensors checkpoint (LDM layout), when not given first")
		out        = fs.String("out", "", "model folder to create (must be absent or empty)")
		fp32       = fs.Bool("fp32", false, "float32 weights (default: float16)")
		fp16       = fs.Bool("fp16", false, "float16 weights (the default)")
		family     = fs.String("family", "auto", "auto, sd15, sd2 or sdxl")
		vae        = fs.String("vae", "", "a VAE .safetensors (LDM or diffusers layout) replacing the checkpoint's")
		prediction = fs.String("prediction", "auto", "auto, epsilon or v_prediction (SD 2 checkpoints rarely say)")
		noEMA      = fs.Bool("no-ema", false, "use the training weights even when EMA weights are present")
		clipBPE    = fs.String("clip-bpe", "", "OpenAI's bpe_simple_vocab_16e6.txt(.gz): the tokenizer of real SD checkpoints")
		external   = fs.Bool("external-data", false, "put every network's weights in model.onnx_data")
		loras      loraFlags
		attention  = fs.String("attention", "fused", attentionUsage)
		loraStrict = fs.Bool("lora-strict", true, "a LoRA module that matches no weight is an error (false: reported)")
	)
	fs.Var(&loras, "lora", "bake a LoRA into the folder: FILE or FILE:SCALE (repeatable; kohya or peft .safetensors)")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		*checkpoint, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	switch {
	case *checkpoint == "":
		return errors.New("import: give the checkpoint file first: sdgate import MODEL.safetensors --out DIR")
	case *out == "":
		return errors.New("import: --out is required")
	case *fp16 && *fp32:
		return errors.New("import: --fp16 and --fp32 exclude each other")
	}
	fused, err := parseAttention(*attention)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	start := time.Now()
	ck, err := openImportSource(*checkpoint, convert.Options{
		Family: convert.Family(*family), VAE: *vae, Prediction: *prediction, NoEMA: *noEMA,
	}, clipBPE)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer ck.Close()
	info := ck.info()
	if info.Vocab == clipVocab && *clipBPE == "" {
		return fmt.Errorf("import: the text encoder has CLIP's %d tokens: give --clip-bpe with OpenAI's bpe_simple_vocab_16e6.txt.gz", clipVocab)
	}
	opts, err := matchPreset(ck, info.Family, synth.Options{
		FusedAttention: fused, FP16: !*fp32, Inpaint: info.Inpaint, ExternalData: *external, ClipBPE: *clipBPE, Prediction: info.Prediction,
		Weights: ck, Doc: "sdgate import: " + filepath.Base(*checkpoint), Source: filepath.Base(*checkpoint),
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if len(loras) > 0 {
		if opts.Weights, err = mergeLoRAs(ck, opts, loras, *loraStrict, stdout); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	fmt.Fprintf(stderr, "%s: %s%s, %s, EMA %v, architecture %s\n", filepath.Base(*checkpoint), info.Family,
		map[bool]string{true: " inpainting"}[info.Inpaint], info.Prediction, info.EMA, opts.Preset)
	rep, err := synth.Write(ctx, *out, opts, stderr)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	printSynthReport(stdout, rep, opts, "weights from "+filepath.Base(*checkpoint))
	if size := ck.size(); size > 0 {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(stdout, "  read %s in %.1fs (%.0f MB/s)\n", humanBytes(size), secs, float64(size)/1e6/secs)
	}
	printUnused(stdout, ck.Unused())
	return nil
}

// matchPreset finds the synth architecture of family whose every parameter
// the checkpoint holds with the right shape; the error says what each
// candidate lacks.
func matchPreset(ck synth.Weights, family convert.Family, opts synth.Options) (synth.Options, error) {
	var problems []string
	for _, name := range synth.Presets() {
		if synth.Family(name) != string(family) {
			continue
		}
		opts.Preset = name
		params, err := synth.Params(opts)
		if err != nil {
			return opts, err
		}
		var first error
		bad := 0
		for _, p := range params {
			if err := ck.Check(p.Net, p.Name, p.Shape); err != nil {
				bad++
				if first == nil {
					first = err
				}
			}
		}
		if bad == 0 {
			return opts, nil
		}
		problems = append(problems, fmt.Sprintf("%s: %d of %d tensors do not fit, first: %v", name, bad, len(params), first))
	}
	return opts, fmt.Errorf("no architecture fits the checkpoint:\n  %s", strings.Join(problems, "\n  "))
}

// importSource is a checkpoint or a diffusers folder.
type importSource interface {
	synth.Weights
	Unused() []convert.Unused
	Close() error
	info() convert.Info
	size() int64 // bytes of weights read from
}

type checkpointSource struct {
	*convert.Checkpoint
	path string
}

func (c checkpointSource) info() convert.Info { return c.Info }

func (c checkpointSource) size() int64 {
	st, err := os.Stat(c.path)
	if err != nil {
		return 0
	}
	return st.Size()
}

type diffusersSource struct{ *convert.Diffusers }

func (d diffusersSource) info() convert.Info { return d.Info }

func (d diffusersSource) size() int64 { return 0 }

// openImportSource opens a checkpoint file or a diffusers folder; a
// folder's tokenizer/merges.txt is the default --clip-bpe.
func openImportSource(path string, opts convert.Options, clipBPE *string) (importSource, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		ck, err := convert.OpenCheckpoint(path, opts)
		if err != nil {
			return nil, err
		}
		return checkpointSource{ck, path}, nil
	}
	if opts.VAE != "" || opts.NoEMA {
		return nil, fmt.Errorf("--vae and --no-ema are for single-file checkpoints")
	}
	d, err := convert.OpenDiffusers(path, opts)
	if err != nil {
		return nil, err
	}
	if *clipBPE == "" {
		*clipBPE = d.Merges
	}
	return diffusersSource{d}, nil
}

// printUnused reports the checkpoint tensors no graph read: counted by
// reason, and each one listed when the reason is unknown.
func printUnused(w io.Writer, unused []convert.Unused) {
	if len(unused) == 0 {
		fmt.Fprintln(w, "  every checkpoint tensor was used")
		return
	}
	byReason := map[string]int{}
	var unknown []string
	for _, u := range unused {
		if u.Reason == "" {
			unknown = append(unknown, u.Key)
			continue
		}
		byReason[u.Reason]++
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "  %d checkpoint tensors not used:\n", len(unused))
	for _, r := range reasons {
		fmt.Fprintf(w, "    %5d  %s\n", byReason[r], r)
	}
	for _, k := range unknown {
		fmt.Fprintf(w, "    not part of the SD graphs: %s\n", k)
	}
}
