package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sdgate/sdgate/sd"
)

func runGenerate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rf       runtimeFlags
		model    = fs.String("model", "", "model folder (optimum / diffusers ONNX layout)")
		prompt   = fs.String("prompt", "", "what to draw")
		negative = fs.String("negative-prompt", "", "what to avoid")
		seed     = fs.String("seed", "", "seed of the first image (image i uses seed+i); empty: random")
		steps    = fs.Int("steps", 0, "denoising steps (0: the model's default)")
		guidance = fs.String("guidance", "", "classifier-free guidance scale (empty: the model's default; <= 1 disables it)")
		sched    = fs.String("scheduler", "", "ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm, pndm (empty: the model's own)")
		size     = fs.String("size", "", "WxH, multiples of 8 (empty: the model's native size)")
		n        = fs.Int("n", 1, "number of images, generated as one batch")
		out      = fs.String("out", "image", "output prefix: PREFIX.png, or PREFIX-1.png ... when n > 1")
		verbose  = fs.Bool("v", false, "log the runtime, device and networks")
	)
	var loras loraFlags
	fs.Var(&loras, "lora", "merge a LoRA as the model loads: FILE or FILE:SCALE (repeatable; kohya or peft .safetensors)")
	loraStrict := fs.Bool("lora-strict", true, "a LoRA module that matches no weight is an error (false: logged)")
	rf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *model == "" {
		return errors.New("generate: --model is required")
	}
	req := sd.Request{Prompt: *prompt, NegativePrompt: *negative, Steps: *steps, Scheduler: *sched, N: *n}
	if *seed != "" {
		v, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			return fmt.Errorf("--seed %q: want a whole number >= 0", *seed)
		}
		req.Seed, req.HasSeed = v, true
	}
	if *guidance != "" {
		g, err := strconv.ParseFloat(*guidance, 64)
		if err != nil {
			return fmt.Errorf("--guidance %q: want a number", *guidance)
		}
		req.Guidance, req.HasGuidance = g, true
	}
	if *size != "" {
		w, h, err := parseSize(*size)
		if err != nil {
			return fmt.Errorf("--size: %w", err)
		}
		req.Width, req.Height = w, h
	}

	logger := cliLogger(stderr, *verbose)
	rt, err := rf.start(logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	loadStart := time.Now()
	m, err := sd.Load(ctx, rt, *model, sd.LoadOptions{SkipVAEEncoder: true, Rewrite: loras.rewrite(*loraStrict, logger)})
	if err != nil {
		return err
	}
	defer m.Close()
	for _, n := range m.Networks() {
		logger.Info("network", "name", n.Name, "device", n.Device, "session", n.Created, "inputs", strings.Join(n.Inputs, "; "))
	}
	logger.Info("model loaded", "dir", *model, "took", time.Since(loadStart).Round(time.Millisecond))

	req.Progress = progressPrinter(stderr)
	res, err := m.Generate(ctx, req)
	if err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(*model))
	for i, img := range res.Images {
		path := *out + ".png"
		if len(res.Images) > 1 {
			path = fmt.Sprintf("%s-%d.png", *out, i+1)
		}
		params := &sd.PNGParams{Prompt: res.Prompt, NegativePrompt: req.NegativePrompt, Steps: res.Steps, Scheduler: res.Scheduler,
			Guidance: res.Guidance, Seed: img.Seed, Width: res.Width, Height: res.Height, Model: name}
		var buf bytes.Buffer
		if err := sd.EncodePNG(&buf, img.Image, params); err != nil {
			return err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s seed=%d\n", path, img.Seed)
	}
	if res.Truncated {
		fmt.Fprintf(stderr, "prompt truncated to the model's token limit; kept: %q\n", res.Prompt)
	}
	fmt.Fprintf(stderr, "%d image(s) %dx%d, %d steps, %s in %s (onnx runtime %s)\n", len(res.Images), res.Width, res.Height,
		res.Steps, res.Scheduler, res.Total.Round(time.Millisecond), res.ORT.Round(time.Millisecond))
	return nil
}

func parseSize(s string) (int, int, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("%q: want WxH, e.g. 512x512", s)
	}
	return w, h, nil
}

// progressPrinter redraws one status line on a terminal and stays silent
// when stderr is a file or pipe (logs should not fill with bars).
func progressPrinter(w io.Writer) func(step, total int) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	start := time.Now()
	return func(step, total int) {
		const width = 30
		done := width * step / total
		fmt.Fprintf(f, "\r[%s%s] %d/%d steps %.1fs", strings.Repeat("=", done), strings.Repeat(" ", width-done), step, total, time.Since(start).Seconds())
		if step == total {
			fmt.Fprintln(f)
		}
	}
}
