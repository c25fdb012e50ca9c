package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/onnxlora"
	"github.com/sdgate/sdgate/models/synth"
)

// loraFlags collects --lora FILE[:SCALE] values.
type loraFlags []loraArg

type loraArg struct {
	path  string
	scale float32
}

func (l *loraFlags) String() string {
	parts := make([]string, len(*l))
	for i, a := range *l {
		parts[i] = fmt.Sprintf("%s:%g", a.path, a.scale)
	}
	return strings.Join(parts, ",")
}

// Set takes FILE or FILE:SCALE; a colon not followed by a number belongs
// to the path.
func (l *loraFlags) Set(s string) error {
	arg := loraArg{path: s, scale: 1}
	if i := strings.LastIndex(s, ":"); i > 0 {
		if v, err := strconv.ParseFloat(s[i+1:], 32); err == nil {
			arg = loraArg{path: s[:i], scale: float32(v)}
		}
	}
	if arg.path == "" {
		return fmt.Errorf("want FILE or FILE:SCALE")
	}
	*l = append(*l, arg)
	return nil
}

// rewrite merges the LoRAs into a model as it loads (generate --lora);
// nil without any.
func (l loraFlags) rewrite(strict bool, logger *slog.Logger) func(network, path string, model []byte) ([]byte, error) {
	if len(l) == 0 {
		return nil
	}
	files := make([]onnxlora.File, len(l))
	for i, a := range l {
		files[i] = onnxlora.File{Name: filepath.Base(a.path), Path: a.path, Scale: float64(a.scale)}
	}
	return onnxlora.Rewriter(files, strict, logger)
}

// mergeLoRAs opens the LoRA files and returns base with them merged, as
// opts' networks will read it.
func mergeLoRAs(base lora.Source, opts synth.Options, args loraFlags, strict bool, stdout io.Writer) (lora.Source, error) {
	params, err := synth.Params(opts)
	if err != nil {
		return nil, err
	}
	specs := make([]lora.Spec, len(params))
	for i, p := range params {
		specs[i] = lora.Spec{Net: p.Net, Name: p.Name, Shape: p.Shape}
	}
	scaled := make([]lora.Scaled, len(args))
	for i, a := range args {
		l, err := lora.Open(a.path)
		if err != nil {
			return nil, err
		}
		scaled[i] = lora.Scaled{LoRA: l, Scale: a.scale}
	}
	merged, rep, err := lora.Apply(base, specs, strict, scaled...)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "  LoRA: %d modules merged (%s)\n", rep.Merged, args.String())
	for _, k := range rep.Unmatched {
		fmt.Fprintf(stdout, "    matches no weight: %s\n", k)
	}
	return merged, nil
}

const attentionUsage = "attention ops: plain (MatMul-Softmax-MatMul) or fused (ONNX Runtime's com.microsoft MultiHeadAttention)"

// parseAttention reads --attention: true for fused.
func parseAttention(s string) (bool, error) {
	switch s {
	case "plain":
		return false, nil
	case "fused":
		return true, nil
	}
	return false, fmt.Errorf("--attention %q: want plain or fused", s)
}
