package lora

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/sdgate/sdgate/convert"
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
	switch net {
	case "text_encoder", "text_encoder_2":
		return net + "."
	}
	return "unet."
}

// WriteKohya writes l in kohya sd-scripts' format for SD 1.x/2.x:
// lora_unet_<path with underscores>.lora_down.weight, .lora_up.weight and
// .alpha, lora_te_ for the text encoder. SDXL LoRAs are WriteKohyaSDXL's.
func WriteKohya(w io.Writer, l *LoRA, dt safetensors.DType) error {
	return writeKohya(w, l, dt, func(m *Module) (string, error) {
		switch m.Net {
		case "unet":
			return "lora_unet_" + strings.ReplaceAll(m.path, ".", "_"), nil
		case "text_encoder":
			return "lora_te_" + strings.ReplaceAll(m.path, ".", "_"), nil
		}
		return "", fmt.Errorf("lora: %s module %q in an SD 1.x/2.x kohya file: write SDXL LoRAs with WriteKohyaSDXL", m.Net, m.Key)
	})
}

// WriteKohyaSDXL writes l as kohya's SDXL LoRAs are: the UNet's modules
// by their LDM path (lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q),
// numbered from unetModules, every module path of the model's UNet; the
// two text encoders as lora_te1_ and lora_te2_.
func WriteKohyaSDXL(w io.Writer, l *LoRA, dt safetensors.DType, unetModules []string) error {
	ldm, err := convert.LDMUNetModules(unetModules)
	if err != nil {
		return err
	}
	toLDM := make(map[string]string, len(ldm))
	for k, v := range ldm {
		toLDM[v] = k
	}
	return writeKohya(w, l, dt, func(m *Module) (string, error) {
		pre := map[string]string{"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}[m.Net]
		path := m.path
		if m.Net == "unet" {
			pre, path = "lora_unet_", toLDM[m.path]
			if path == "" {
				return "", fmt.Errorf("lora: unet module %q has no LDM name", m.path)
			}
		}
		if pre == "" {
			return "", fmt.Errorf("lora: module %q of unknown network %q", m.Key, m.Net)
		}
		return pre + strings.ReplaceAll(path, ".", "_"), nil
	})
}

// writeKohya writes l's modules under the keys key gives (a kohya LoRA
// keeps the keys it was read with).
func writeKohya(w io.Writer, l *LoRA, dt safetensors.DType, key func(*Module) (string, error)) error {
	var entries []safetensors.Entry
	for _, m := range l.Modules {
		k := m.Key
		if l.Format != FormatKohya {
			var err error
			if k, err = key(m); err != nil {
				return err
			}
		}
		entries = append(entries,
			safetensors.Float32Entry(k+".lora_down.weight", dt, m.DownShape, m.Down),
			safetensors.Float32Entry(k+".lora_up.weight", dt, m.UpShape, m.Up),
			safetensors.Float32Entry(k+".alpha", dt, nil, []float32{m.Alpha}))
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
