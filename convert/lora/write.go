package lora

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/sdgate/sdgate/convert/safetensors"
)

// Spec names a weight a LoRA should adapt: network, state-dict name and
// torch shape ([out, in] or [out, in, kh, kw]).
type Spec struct {
	Net   string
	Name  string
	Shape []int64
}

// Synthesize builds a LoRA of the given rank and alpha for specs, with
// deterministic values from seed: small enough that a merged model stays
// well-behaved, large enough to change its images. Tests and `sdgate synth
// --lora` use it.
func Synthesize(specs []Spec, rank int64, alpha float32, seed uint64) (*LoRA, error) {
	if rank <= 0 {
		return nil, fmt.Errorf("lora: rank %d must be positive", rank)
	}
	l := &LoRA{Format: FormatPeft}
	state := seed
	next := func() float32 { // SplitMix64 -> uniform in [-1, 1)
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		return float32(z>>40)/float32(1<<23) - 1
	}
	for _, s := range specs {
		mod, ok := strings.CutSuffix(s.Name, ".weight")
		if !ok || (len(s.Shape) != 2 && len(s.Shape) != 4) {
			return nil, fmt.Errorf("lora: cannot adapt %s %q %v", s.Net, s.Name, s.Shape)
		}
		in := s.Shape[1]
		downShape := []int64{rank, in}
		upShape := []int64{s.Shape[0], rank}
		if len(s.Shape) == 4 {
			downShape = append(downShape, s.Shape[2], s.Shape[3])
			upShape = append(upShape, 1, 1)
		}
		m := &Module{Net: s.Net, path: mod, DownShape: downShape, UpShape: upShape, Alpha: alpha}
		m.Key = peftPrefix(s.Net) + mod
		fanIn := float32(math.Sqrt(float64(numel(downShape) / rank)))
		m.Down = make([]float32, numel(downShape))
		for i := range m.Down {
			m.Down[i] = next() / fanIn
		}
		m.Up = make([]float32, numel(upShape))
		for i := range m.Up {
			m.Up[i] = 0.1 * next() / float32(math.Sqrt(float64(rank)))
		}
		l.Modules = append(l.Modules, m)
	}
	return l, nil
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func peftPrefix(net string) string {
	if net == "text_encoder" {
		return "text_encoder."
	}
	return "unet."
}

// WriteKohya writes l in kohya sd-scripts' format: lora_unet_<path with
// underscores>.lora_down.weight, .lora_up.weight and .alpha.
func WriteKohya(w io.Writer, l *LoRA, dt safetensors.DType) error {
	var entries []safetensors.Entry
	for _, m := range l.Modules {
		pre := "lora_unet_"
		if m.Net == "text_encoder" {
			pre = "lora_te_"
		}
		key := pre + strings.ReplaceAll(m.path, ".", "_")
		if l.Format == FormatKohya {
			key = m.Key
		}
		entries = append(entries,
			safetensors.Float32Entry(key+".lora_down.weight", dt, m.DownShape, m.Down),
			safetensors.Float32Entry(key+".lora_up.weight", dt, m.UpShape, m.Up),
			safetensors.Float32Entry(key+".alpha", dt, nil, []float32{m.Alpha}))
	}
	md := map[string]string{"ss_network_module": "networks.lora", "ss_network_dim": fmt.Sprint(maxRank(l))}
	return safetensors.Write(w, md, entries)
}

// WritePeft writes l in the diffusers / peft format: unet.<path>.lora_A.weight
// and .lora_B.weight, with the alpha kept as <path>.alpha (peft keeps it in
// adapter_config.json, which a single file does not have).
func WritePeft(w io.Writer, l *LoRA, dt safetensors.DType) error {
	if l.Format == FormatKohya {
		return fmt.Errorf("lora: a kohya LoRA's underscored paths cannot be written as peft without the model's names")
	}
	var entries []safetensors.Entry
	for _, m := range l.Modules {
		key := peftPrefix(m.Net) + m.path
		entries = append(entries,
			safetensors.Float32Entry(key+".lora_A.weight", dt, m.DownShape, m.Down),
			safetensors.Float32Entry(key+".lora_B.weight", dt, m.UpShape, m.Up),
			safetensors.Float32Entry(key+".alpha", dt, nil, []float32{m.Alpha}))
	}
	return safetensors.Write(w, nil, entries)
}

func maxRank(l *LoRA) int64 {
	ranks := make([]int64, 0, len(l.Modules))
	for _, m := range l.Modules {
		ranks = append(ranks, m.Rank())
	}
	if len(ranks) == 0 {
		return 0
	}
	return slices.Max(ranks)
}
