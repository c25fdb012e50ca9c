package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sdgate/sdgate/sd"
)

// guidedStepTFLOP is the compute of one SD 1.5 UNet step with guidance
// (batch 2) at 512x512: the floor against which a step time is judged.
const guidedStepTFLOP = 1.6

// runGPUCheck loads a model on the requested device and prints what a GPU
// host needs to know: the provider and device actually used, session
// creation per network, UNet step times at batch 1 and 2, VAE decode, end
// to end per image, and memory. It runs as well on the CPU with a tiny
// model, which is how it is tested.
func runGPUCheck(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gpucheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rf         runtimeFlags
		model      = fs.String("model", "", "model folder (e.g. written by sdgate synth --preset sd15 --fp16)")
		size       = fs.String("size", "", "WxH (empty: the model's native size)")
		stepsList  = fs.String("steps", "20,50", "end-to-end runs: comma-separated step counts, one image each, guidance on")
		benchSteps = fs.Int("bench-steps", 10, "denoising steps per UNet timing run (the first step of each run is not counted)")
		runs       = fs.Int("runs", 2, "timing runs per figure; the median is reported")
		prompt     = fs.String("prompt", "a lighthouse on a cliff at dusk, oil painting", "prompt for every run")
		verbose    = fs.Bool("v", false, "log the runtime's decisions")
		batchList  = fs.String("batch", "", "batching table: comma-separated request counts run batched and alone (e.g. 1,2,4,8; empty: skip)")
	)
	rf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *model == "" {
		return errors.New("gpucheck: --model is required")
	}
	e2eSteps, err := parseStepsList(*stepsList)
	if err != nil {
		return fmt.Errorf("--steps: %w", err)
	}
	var batchSizes []int
	if *batchList != "" {
		if batchSizes, err = parseStepsList(*batchList); err != nil {
			return fmt.Errorf("--batch: %w", err)
		}
	}
	if *benchSteps < 2 || *runs < 1 {
		return errors.New("gpucheck: --bench-steps must be at least 2 and --runs at least 1")
	}
	var width, height int
	if *size != "" {
		if width, height, err = parseSize(*size); err != nil {
			return fmt.Errorf("--size: %w", err)
		}
	}
	logger := cliLogger(stderr, *verbose)

	// One line per figure, written as soon as it is known: a run that fails
	// half-way still shows everything measured before.
	line := func(key, format string, args ...any) {
		fmt.Fprintf(stdout, "%-22s %s\n", key, fmt.Sprintf(format, args...))
	}
	line("sdgate gpucheck", "%s, sdgate %s", time.Now().UTC().Format(time.RFC3339), buildVersion())
	gpu := newGPUMemory()
	line("gpu", "%s", gpu.describe(ctx))

	rt, err := rf.start(logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	dev, why := rt.Device()
	line("onnx runtime", "%s (%s)", rt.Version(), rt.Library())
	line("device", "%s: %s", dev, why)
	line("provider", "%s", rt.Provider())
	if devs, err := rt.EPDevices(); err == nil {
		for i, d := range devs {
			line(fmt.Sprintf("ep device %d", i), "%s", d)
		}
	}

	loadStart := time.Now()
	m, err := sd.Load(ctx, rt, *model, sd.LoadOptions{SkipVAEEncoder: true})
	if err != nil {
		return err
	}
	defer m.Close()
	precision := "fp32"
	if m.Spec.FP16 {
		precision = "fp16"
	}
	if width == 0 {
		width, height = m.Spec.NativeWidth, m.Spec.NativeHeight
	}
	line("model", "%s (%s, native %dx%d)", *model, precision, m.Spec.NativeWidth, m.Spec.NativeHeight)
	for _, n := range m.Networks() {
		if n.Name != "vae_encoder" { // not loaded: text to image only
			line("session "+n.Name, "%s on %s", n.Created, n.Device)
		}
	}
	line("sessions total", "%s", time.Since(loadStart).Round(time.Millisecond))
	for _, f := range rt.Fallbacks() {
		line("cpu fallback", "%s", f)
	}
	line("memory after load", "%s", gpu.sample(ctx))

	base := sd.Request{Prompt: *prompt, Width: width, Height: height, Seed: 1, HasSeed: true}
	tm := timer{model: m}
	// Warm-up: the first run of each shape picks convolution algorithms.
	for _, g := range []float64{1, 7.5} {
		if _, err := tm.generate(ctx, base, 2, g); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	tm.decodes = nil
	for _, batch := range []int{1, 2} {
		g := 1.0 // no guidance: the UNet sees one latent
		if batch == 2 {
			g = 7.5
		}
		var steps []time.Duration
		for range *runs {
			r, err := tm.generate(ctx, base, *benchSteps, g)
			if err != nil {
				return err
			}
			s := r.steps
			if len(s) > 1 { // the first timed step carries the run's set-up
				s = s[1:]
			}
			steps = append(steps, s...)
		}
		if len(steps) == 0 {
			return fmt.Errorf("no UNet step was timed (%d steps with %s)", *benchSteps, m.Spec.Scheduler)
		}
		med := median(steps)
		note := ""
		if batch == 2 && width == 512 && height == 512 {
			note = fmt.Sprintf("; %.0f TFLOP/s at SD 1.5's %.1f TFLOP per guided step", guidedStepTFLOP/med.Seconds(), guidedStepTFLOP)
		}
		line(fmt.Sprintf("unet step batch %d", batch), "%s median, %s min over %d steps (%dx%d)%s",
			ms(med), ms(slices.Min(steps)), len(steps), width, height, note)
	}
	for _, n := range e2eSteps {
		var totals []time.Duration
		for range *runs {
			r, err := tm.generate(ctx, base, n, 7.5)
			if err != nil {
				return err
			}
			totals = append(totals, r.total)
		}
		line(fmt.Sprintf("end to end %d steps", n), "%.3f s/image median (%s), guidance 7.5, %dx%d",
			median(totals).Seconds(), joinDurations(totals), width, height)
	}
	line("vae decode", "%s median over %d decodes (%dx%d)", ms(median(tm.decodes)), len(tm.decodes), width, height)
	if err := batchFigures(ctx, m, base, batchSizes, *benchSteps, *runs, line); err != nil {
		return err
	}
	line("memory at end", "%s", gpu.sample(ctx))
	line("memory peak seen", "%s", gpu.peak())
	return nil
}

// timer runs generations and times their parts from the progress callback:
// the time between two callbacks is one denoising step, the time from the
// last one to the end is the VAE decode (and the image conversion).
type timer struct {
	model   *sd.Model
	decodes []time.Duration
}

type timedRun struct {
	steps []time.Duration
	total time.Duration
}

func (t *timer) generate(ctx context.Context, req sd.Request, steps int, guidance float64) (timedRun, error) {
	req.Steps, req.Guidance, req.HasGuidance = steps, guidance, true
	var marks []time.Time
	req.Progress = func(step, total int) { marks = append(marks, time.Now()) }
	res, err := t.model.Generate(ctx, req)
	end := time.Now()
	if err != nil {
		return timedRun{}, err
	}
	r := timedRun{total: res.Total}
	for i := 1; i < len(marks); i++ {
		r.steps = append(r.steps, marks[i].Sub(marks[i-1]))
	}
	if len(marks) > 0 {
		t.decodes = append(t.decodes, end.Sub(marks[len(marks)-1]))
	}
	return r, nil
}

func parseStepsList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > sd.MaxSteps {
			return nil, fmt.Errorf("%q: want step counts between 1 and %d, e.g. 20,50", s, sd.MaxSteps)
		}
		out = append(out, n)
	}
	return out, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.3f", d.Seconds())
	}
	return strings.Join(parts, ", ") + " s"
}

// gpuMemory reads memory use from nvidia-smi when there is one, and the
// process's resident set otherwise (a CPU run's memory is there).
type gpuMemory struct {
	smi      string // path of nvidia-smi; "" when absent
	peakProc int64  // MiB used by this process on the GPU
	peakGPU  int64  // MiB used on the GPU in all
	peakRSS  int64  // MiB
}

func newGPUMemory() *gpuMemory {
	smi, _ := exec.LookPath("nvidia-smi")
	return &gpuMemory{smi: smi}
}

func (g *gpuMemory) query(ctx context.Context, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, g.smi, append(args, "--format=csv,noheader,nounits")...).Output()
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

func (g *gpuMemory) describe(ctx context.Context) string {
	if g.smi == "" {
		return "no nvidia-smi on PATH"
	}
	rows, err := g.query(ctx, "--query-gpu=index,name,driver_version,memory.total")
	if err != nil {
		return "nvidia-smi: " + err.Error()
	}
	return strings.Join(rows, "; ") + " (index, name, driver, MiB)"
}

// sample reads the memory in use now and keeps the peaks.
func (g *gpuMemory) sample(ctx context.Context) string {
	rss := peakRSSMiB()
	g.peakRSS = max(g.peakRSS, rss)
	if g.smi == "" {
		return fmt.Sprintf("process peak RSS %d MiB (no nvidia-smi)", rss)
	}
	var gpuUsed int64
	if rows, err := g.query(ctx, "--query-gpu=memory.used"); err == nil {
		for _, r := range rows {
			v, _ := strconv.ParseInt(strings.TrimSpace(r), 10, 64)
			gpuUsed += v
		}
	}
	proc := int64(-1) // not listed: nvidia-smi in a container often sees other pids
	if rows, err := g.query(ctx, "--query-compute-apps=pid,used_memory"); err == nil {
		for _, r := range rows {
			pid, mem, ok := strings.Cut(r, ",")
			if ok && strings.TrimSpace(pid) == strconv.Itoa(os.Getpid()) {
				proc, _ = strconv.ParseInt(strings.TrimSpace(mem), 10, 64)
			}
		}
	}
	g.peakGPU = max(g.peakGPU, gpuUsed)
	g.peakProc = max(g.peakProc, proc)
	procText := "not listed"
	if proc >= 0 {
		procText = fmt.Sprintf("%d MiB", proc)
	}
	return fmt.Sprintf("GPU %d MiB used (this process: %s), process peak RSS %d MiB", gpuUsed, procText, rss)
}

func (g *gpuMemory) peak() string {
	if g.smi == "" {
		return fmt.Sprintf("process peak RSS %d MiB", g.peakRSS)
	}
	return fmt.Sprintf("GPU %d MiB used, this process %d MiB (sampled between phases; -1: not listed), process peak RSS %d MiB",
		g.peakGPU, g.peakProc, g.peakRSS)
}

// peakRSSMiB is the process's peak resident set (VmHWM), or 0 off Linux.
func peakRSSMiB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb / 1024
		}
	}
	return 0
}
