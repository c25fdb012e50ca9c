//go:build cgo

package synth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sdgate/sdgate/sd/clip"
)

// TestVariantsRun writes every export variant the loader accepts and runs
// each network of it in ONNX Runtime.
func TestVariantsRun(t *testing.T) {
	needORT(t)
	cases := []struct {
		name string
		opts Options
	}{
		{"fp32", Options{}},
		{"fp16", Options{FP16: true}},
		{"fp32 int64 timestep", Options{Timestep: TimestepInt64Batch}},
		{"fp16 int64 timestep", Options{FP16: true, Timestep: TimestepInt64Batch}},
		{"fp32 scalar timestep", Options{Timestep: TimestepFloatScalar}},
		{"fp16 scalar timestep", Options{FP16: true, Timestep: TimestepFloatScalar}},
		{"int64 input ids", Options{InputIDs64: true}},
		{"fp16 int64 input ids", Options{FP16: true, InputIDs64: true}},
		{"latent parameters", Options{LatentParameters: true}},
		{"fp16 latent parameters", Options{FP16: true, LatentParameters: true}},
		{"external data", Options{ExternalData: true}},
		{"fp16 external data", Options{FP16: true, ExternalData: true}},
		{"inpaint", Options{Inpaint: true}},
		{"fp16 inpaint", Options{FP16: true, Inpaint: true}},
		{"no vae encoder", Options{NoVAEEncoder: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTiny(t, tc.opts)
			checkLayout(t, dir, tc.opts)
			context := runTextEncoder(t, dir, tc.opts)
			runUNet(t, dir, tc.opts, context, 8, 8)
			runVAEDecoder(t, dir, tc.opts, 8, 8)
			if !tc.opts.NoVAEEncoder {
				runVAEEncoder(t, dir, tc.opts, 64, 64)
			}
		})
	}
}

// TestDynamicSize runs the tiny model at 256x256 (32x32 latents): every
// spatial dimension is symbolic.
func TestDynamicSize(t *testing.T) {
	needORT(t)
	dir := writeTiny(t, Options{})
	context := runTextEncoder(t, dir, Options{})
	runUNet(t, dir, Options{}, context, 32, 24)
	runVAEDecoder(t, dir, Options{}, 32, 24)
	runVAEEncoder(t, dir, Options{}, 256, 192)
}

func floatType(opts Options) dataType {
	if opts.FP16 {
		return dtFloat16
	}
	return dtFloat
}

// checkLayout checks the folder's files and its JSON against the contract.
func checkLayout(t *testing.T, dir string, opts Options) {
	t.Helper()
	want := map[string]bool{
		"model_index.json":                  true,
		"sdgate.json":                       true,
		"scheduler/scheduler_config.json":   true,
		"tokenizer/vocab.json":              true,
		"tokenizer/merges.txt":              true,
		"text_encoder/model.onnx":           true,
		"unet/model.onnx":                   true,
		"vae_decoder/model.onnx":            true,
		"vae_encoder/model.onnx":            !opts.NoVAEEncoder,
		"unet/model.onnx_data":              opts.ExternalData,
		"text_encoder/model.onnx_data":      opts.ExternalData,
		"vae_decoder/model.onnx_data":       opts.ExternalData,
		"vae_encoder/model.onnx_data":       opts.ExternalData && !opts.NoVAEEncoder,
		"tokenizer/tokenizer_config.json":   true,
		"tokenizer/special_tokens_map.json": true,
	}
	for path, present := range want {
		_, err := os.Stat(filepath.Join(dir, path))
		if present && err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if !present && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: present, want absent (err %v)", path, err)
		}
	}

	var index map[string]any
	readJSON(t, filepath.Join(dir, "model_index.json"), &index)
	wantClass := "OnnxStableDiffusionPipeline"
	if opts.Inpaint {
		wantClass = "OnnxStableDiffusionInpaintPipeline"
	}
	if index["_class_name"] != wantClass {
		t.Errorf("model_index _class_name = %v, want %s", index["_class_name"], wantClass)
	}
	for _, c := range []string{"text_encoder", "tokenizer", "unet", "vae_decoder", "scheduler"} {
		if _, ok := index[c].([]any); !ok {
			t.Errorf("model_index %s = %v, want a [library, class] pair", c, index[c])
		}
	}
	if _, ok := index["vae_encoder"]; ok == opts.NoVAEEncoder {
		t.Errorf("model_index vae_encoder present = %v with NoVAEEncoder %v", ok, opts.NoVAEEncoder)
	}

	var m Manifest
	readJSON(t, filepath.Join(dir, ManifestFile), &m)
	if m.Preset != "tiny" || m.NativeWidth != 64 || m.NativeHeight != 64 || m.DefaultSteps != 4 || m.FP16 != opts.FP16 {
		t.Errorf("sdgate.json = %+v", m)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// runTextEncoder encodes two prompts with the folder's own tokenizer and
// checks pooler_output is last_hidden_state at each prompt's EOS. It
// returns last_hidden_state, the UNet's context.
func runTextEncoder(t *testing.T, dir string, opts Options) []float64 {
	t.Helper()
	path := filepath.Join(dir, "text_encoder", modelFile)
	hidden := presets["tiny"].text.hidden
	ft := floatType(opts)
	idType := dtInt32
	if opts.InputIDs64 {
		idType = dtInt64
	}
	ins, outs := ioInfo(t, path)
	checkIO(t, "text_encoder inputs", ins, []ioWant{{"input_ids", ortType(idType), 2}})
	checkIO(t, "text_encoder outputs", outs, []ioWant{
		{"last_hidden_state", ortType(ft), 3}, {"pooler_output", ortType(ft), 2},
	})

	tok, err := clip.Load(filepath.Join(dir, "tokenizer"))
	if err != nil {
		t.Fatalf("tokenizer: %v", err)
	}
	var ids []float64
	var eos []int
	for _, prompt := range []string{"a watercolor painting of a small red fox in the snow", ""} {
		enc, err := tok.EncodePadded(prompt)
		if err != nil {
			t.Fatal(err)
		}
		eos = append(eos, enc.Tokens-1)
		for _, id := range enc.IDs {
			ids = append(ids, float64(id))
		}
	}
	s := session(t, path, []string{"input_ids"}, []string{"last_hidden_state", "pooler_output"})
	lhs, pooled := tensorOut(t, ft, 2, 77, hidden), tensorOut(t, ft, 2, hidden)
	if err := s.Run([]ort.Value{tensorIn(t, idType, []int64{2, 77}, ids)}, []ort.Value{lhs, pooled}); err != nil {
		t.Fatalf("text_encoder run: %v", err)
	}
	states := floatsOut(t, "last_hidden_state", ft, lhs)
	pool := floatsOut(t, "pooler_output", ft, pooled)
	for b := range 2 {
		at := states[(b*77+eos[b])*int(hidden):][:hidden]
		for i := range hidden {
			if pool[b*int(hidden)+int(i)] != at[i] {
				t.Fatalf("batch %d: pooler_output differs from last_hidden_state at EOS position %d (element %d)", b, eos[b], i)
			}
		}
	}
	return states
}

func runUNet(t *testing.T, dir string, opts Options, context []float64, h, w int64) {
	t.Helper()
	path := filepath.Join(dir, "unet", modelFile)
	hidden := presets["tiny"].text.hidden
	ft := floatType(opts)
	inCh := int64(4)
	if opts.Inpaint {
		inCh = 9
	}
	tsType, tsRank := ft, 1
	switch opts.Timestep {
	case TimestepInt64Batch:
		tsType = dtInt64
	case TimestepFloatScalar:
		tsRank = 0
	}
	ins, outs := ioInfo(t, path)
	checkIO(t, "unet inputs", ins, []ioWant{
		{"sample", ortType(ft), 4}, {"timestep", ortType(tsType), tsRank}, {"encoder_hidden_states", ortType(ft), 3},
	})
	checkIO(t, "unet outputs", outs, []ioWant{{"out_sample", ortType(ft), 4}})

	var timestep ort.Value
	switch {
	case tsRank == 1:
		timestep = tensorIn(t, tsType, []int64{2}, []float64{981, 41})
	case ft == dtFloat:
		sc, err := ort.NewScalar(float32(981))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sc.Destroy() })
		timestep = sc
	default:
		// onnxruntime_go cannot build a rank-0 float16 tensor (NewScalar
		// has no float16 type, NewCustomDataTensor rejects an empty
		// shape). ORT 1.30 does not check a rank-0 input's rank, so a
		// [1] tensor stands in; the graph broadcasts either to the batch.
		timestep = tensorIn(t, dtFloat16, []int64{1}, []float64{981})
	}
	s := session(t, path, []string{"sample", "timestep", "encoder_hidden_states"}, []string{"out_sample"})
	out := tensorOut(t, ft, 2, 4, h, w)
	err := s.Run([]ort.Value{
		tensorIn(t, ft, []int64{2, inCh, h, w}, seq(2*inCh*h*w, 1)),
		timestep,
		tensorIn(t, ft, []int64{2, 77, hidden}, context),
	}, []ort.Value{out})
	if err != nil {
		t.Fatalf("unet run: %v", err)
	}
	floatsOut(t, "out_sample", ft, out)
}

func runVAEDecoder(t *testing.T, dir string, opts Options, h, w int64) {
	t.Helper()
	path := filepath.Join(dir, "vae_decoder", modelFile)
	ft := floatType(opts)
	ins, outs := ioInfo(t, path)
	checkIO(t, "vae_decoder inputs", ins, []ioWant{{"latent_sample", ortType(ft), 4}})
	checkIO(t, "vae_decoder outputs", outs, []ioWant{{"sample", ortType(ft), 4}})
	s := session(t, path, []string{"latent_sample"}, []string{"sample"})
	out := tensorOut(t, ft, 1, 3, 8*h, 8*w)
	if err := s.Run([]ort.Value{tensorIn(t, ft, []int64{1, 4, h, w}, seq(4*h*w, 5))}, []ort.Value{out}); err != nil {
		t.Fatalf("vae_decoder run: %v", err)
	}
	floatsOut(t, "vae_decoder sample", ft, out)
}

func runVAEEncoder(t *testing.T, dir string, opts Options, h, w int64) {
	t.Helper()
	path := filepath.Join(dir, "vae_encoder", modelFile)
	ft := floatType(opts)
	name, ch := "latent_sample", int64(4)
	if opts.LatentParameters {
		name, ch = "latent_parameters", 8
	}
	ins, outs := ioInfo(t, path)
	checkIO(t, "vae_encoder inputs", ins, []ioWant{{"sample", ortType(ft), 4}})
	checkIO(t, "vae_encoder outputs", outs, []ioWant{{name, ortType(ft), 4}})
	s := session(t, path, []string{"sample"}, []string{name})
	out := tensorOut(t, ft, 1, ch, h/8, w/8)
	if err := s.Run([]ort.Value{tensorIn(t, ft, []int64{1, 3, h, w}, seq(3*h*w, 1))}, []ort.Value{out}); err != nil {
		t.Fatalf("vae_encoder run: %v", err)
	}
	floatsOut(t, name, ft, out)
}

func hashFolder(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sums[filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func TestDeterministic(t *testing.T) {
	cases := []struct {
		name string
		opts Options
	}{
		{"fp32", Options{Seed: 7}},
		{"fp16 external", Options{Seed: 7, FP16: true, ExternalData: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := hashFolder(t, writeTiny(t, tc.opts))
			again := hashFolder(t, writeTiny(t, tc.opts))
			if len(first) != len(again) {
				t.Fatalf("file sets differ: %d vs %d files", len(first), len(again))
			}
			for path, sum := range first {
				if again[path] != sum {
					t.Errorf("%s differs between two writes with the same seed", path)
				}
			}
			other := tc.opts
			other.Seed++
			reseeded := hashFolder(t, writeTiny(t, other))
			for _, path := range []string{"unet/model.onnx", "text_encoder/model.onnx", "vae_decoder/model.onnx"} {
				if tc.opts.ExternalData {
					path += externalSuffix
				}
				if reseeded[path] == first[path] {
					t.Errorf("%s is the same for seeds %d and %d", path, tc.opts.Seed, other.Seed)
				}
			}
			if reseeded["tokenizer/vocab.json"] != first["tokenizer/vocab.json"] {
				t.Error("tokenizer depends on the seed")
			}
		})
	}
}

// TestExternalMatchesInline: weights depend on seed and name only, so the
// external-data variant computes exactly what the inline one does.
func TestExternalMatchesInline(t *testing.T) {
	needORT(t)
	run := func(opts Options) []float64 {
		dir := writeTiny(t, opts)
		path := filepath.Join(dir, "vae_decoder", modelFile)
		s := session(t, path, []string{"latent_sample"}, []string{"sample"})
		out := tensorOut(t, dtFloat, 1, 3, 64, 64)
		if err := s.Run([]ort.Value{tensorIn(t, dtFloat, []int64{1, 4, 8, 8}, seq(256, 2))}, []ort.Value{out}); err != nil {
			t.Fatal(err)
		}
		return floatsOut(t, "sample", dtFloat, out)
	}
	inline, external := run(Options{Seed: 3}), run(Options{Seed: 3, ExternalData: true})
	for i := range inline {
		if inline[i] != external[i] {
			t.Fatalf("element %d: inline %v, external %v", i, inline[i], external[i])
		}
	}
}

func TestWriteErrors(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		dir  string
		opts Options
		want error
	}{
		{"unknown preset", context.Background(), "", Options{Preset: "sdxl-huge"}, ErrUnknownPreset},
		{"empty preset", context.Background(), "", Options{}, ErrUnknownPreset},
		{"bad timestep", context.Background(), "", Options{Preset: "tiny", Timestep: "int32"}, ErrBadTimestep},
		{"folder not empty", context.Background(), full, Options{Preset: "tiny"}, ErrNotEmpty},
		{"missing clip bpe", context.Background(), "", Options{Preset: "tiny", ClipBPE: filepath.Join(full, "none.txt.gz")}, fs.ErrNotExist},
		{"cancelled", cancelled, "", Options{Preset: "tiny"}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := tc.dir
			if dir == "" {
				dir = filepath.Join(parent, "model")
			}
			_, err := Write(tc.ctx, dir, tc.opts, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Write: got %v, want %v", err, tc.want)
			}
			if tc.dir == "" {
				entries, _ := os.ReadDir(parent)
				if len(entries) != 0 {
					t.Errorf("a failed Write left %v behind", entries)
				}
			}
		})
	}
}

func TestWriteIntoEmptyFolder(t *testing.T) {
	dir := t.TempDir() // exists, empty
	rep, err := Write(context.Background(), dir, Options{Preset: "tiny"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "unet", modelFile)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("folder mode %v (%v), want rwxr-xr-x", info.Mode(), err)
	}
	if rep.Dir != dir || len(rep.Networks) != 4 || rep.Bytes() == 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestReport(t *testing.T) {
	var progress strings.Builder
	rep, err := Write(context.Background(), filepath.Join(t.TempDir(), "m"), Options{Preset: "tiny", NoVAEEncoder: true}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var total int64
	for _, n := range rep.Networks {
		names = append(names, n.Name)
		total += n.Params
		if n.Params <= 0 || n.ExternalData {
			t.Errorf("network %+v", n)
		}
	}
	if got := strings.Join(names, ","); got != "text_encoder,unet,vae_decoder" {
		t.Errorf("networks %s", got)
	}
	if rep.Params() != total {
		t.Errorf("Params() = %d, want %d", rep.Params(), total)
	}
	var sum int64
	for _, f := range rep.Files {
		info, err := os.Stat(filepath.Join(rep.Dir, filepath.FromSlash(f.Path)))
		if err != nil || info.Size() != f.Size {
			t.Errorf("file %+v: on disk %v, %v", f, info, err)
		}
		sum += f.Size
	}
	if rep.Bytes() != sum || rep.Elapsed <= 0 || rep.Preset != "tiny" {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(progress.String(), "unet: writing 1,055,044 parameters") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// TestClipBPE builds the tokenizer from OpenAI's CLIP merges: the text
// encoder then has CLIP's 49408 token rows.
func TestClipBPE(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bpe := filepath.Join(root, "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz")
	if _, err := os.Stat(bpe); err != nil {
		t.Skipf("CLIP BPE file not available (%v)", err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	rep, err := Write(context.Background(), dir, Options{Preset: "tiny", ClipBPE: bpe}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := presets["tiny"].text
	tc.vocab = 49408
	want := buildTextEncoder(tc, netOptions{float: dtFloat}, false).paramCount()
	if rep.Networks[0].Name != "text_encoder" || rep.Networks[0].Params != want {
		t.Errorf("text encoder %+v, want %d params", rep.Networks[0], want)
	}
	if ortProblem == "" {
		runTextEncoder(t, dir, Options{})
	}
}

// cancelOn cancels a context when a progress line contains match.
type cancelOn struct {
	match  string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.match) {
		c.cancel()
	}
	return len(p), nil
}

// TestCancelMidWrite cancels while the UNet is being written: Write stops
// with the context's error and leaves nothing behind.
func TestCancelMidWrite(t *testing.T) {
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Write(ctx, filepath.Join(parent, "model"), Options{Preset: "tiny"}, cancelOn{"unet: writing", cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: got %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("a cancelled Write left %v behind", entries)
	}
}

// TestTinySD2Runs writes the SD 2 layout and runs its networks; its
// folder pads with "!" and predicts v.
func TestTinySD2Runs(t *testing.T) {
	needORT(t)
	for _, fp16 := range []bool{false, true} {
		opts := Options{Preset: "tiny-sd2", FP16: fp16}
		dir := filepath.Join(t.TempDir(), "m")
		if _, err := Write(context.Background(), dir, opts, nil); err != nil {
			t.Fatal(err)
		}
		context := runTextEncoder(t, dir, opts)
		runUNet(t, dir, opts, context, 8, 8)
		runVAEDecoder(t, dir, opts, 8, 8)

		var sched struct {
			PredictionType string `json:"prediction_type"`
		}
		readJSON(t, filepath.Join(dir, "scheduler", "scheduler_config.json"), &sched)
		if sched.PredictionType != "v_prediction" {
			t.Errorf("prediction_type %q", sched.PredictionType)
		}
		tok, err := os.ReadFile(filepath.Join(dir, "tokenizer", "special_tokens_map.json"))
		if err != nil {
			t.Fatal(err)
		}
		var special map[string]any
		if err := json.Unmarshal(tok, &special); err != nil {
			t.Fatal(err)
		}
		if pad, _ := json.Marshal(special["pad_token"]); !json.Valid(pad) || string(pad) == `"<|endoftext|>"` {
			t.Errorf("pad token %s, want SD 2's !", pad)
		}
	}
	if Family("tiny-sd2") != FamilySD2 || Family("tiny") != FamilySD1 || Family("nope") != "" {
		t.Error("Family")
	}
	if _, err := Write(context.Background(), filepath.Join(t.TempDir(), "x"), Options{Preset: "tiny", Prediction: "x0"}, nil); err == nil {
		t.Error("bad prediction accepted")
	}
}
