package spec

import (
	"fmt"
	"math"
)

// LoRA limits: a request stacks at most MaxLoRAs, each at a scale within
// ±MaxLoRAScale (beyond it a LoRA only burns the image).
const (
	MaxLoRAs     = 4
	MaxLoRAScale = 4
)

// LoRA selects one of a model folder's LoRAs (its loras/ directory, by file
// name without .safetensors) and the strength it is merged at.
type LoRA struct {
	Name  string
	Scale float64
}

// ValidateLoRAs checks a request's LoRA list against the limits; names are
// the model's business (models knows which files exist).
func ValidateLoRAs(loras []LoRA) error {
	if len(loras) > MaxLoRAs {
		return &ParamError{Param: "loras", Message: fmt.Sprintf("at most %d LoRAs, got %d", MaxLoRAs, len(loras))}
	}
	seen := map[string]bool{}
	for i, l := range loras {
		switch {
		case l.Name == "":
			return &ParamError{Param: "loras", Message: fmt.Sprintf("loras[%d] has no name", i)}
		case seen[l.Name]:
			return &ParamError{Param: "loras", Message: fmt.Sprintf("LoRA %q is named twice", l.Name)}
		case math.IsNaN(l.Scale) || math.Abs(l.Scale) > MaxLoRAScale:
			return &ParamError{Param: "loras", Message: fmt.Sprintf("LoRA %q: scale %v is outside -%d..%d", l.Name, l.Scale, MaxLoRAScale, MaxLoRAScale)}
		}
		seen[l.Name] = true
	}
	return nil
}
