package compat

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/sdgate/sdgate/sd/spec"
)

// LoRA is one entry of the sdgate extension field "loras": a LoRA of the
// model's folder by name, and its strength (omitted: 1).
type LoRA struct {
	Name  string   `json:"name"`
	Scale *float64 `json:"scale,omitempty"`
}

// lorasInto decodes "loras": an array of {"name": string, "scale": number}
// objects, each key checked like a top-level field.
func lorasInto(dst *[]LoRA) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return typeErr(param, "an array", raw)
		}
		if len(items) > spec.MaxLoRAs {
			return fieldErr(param, CodeInvalidValue, "Invalid '%s': at most %d LoRAs, got %d.", param, spec.MaxLoRAs, len(items))
		}
		out := make([]LoRA, len(items))
		for i, item := range items {
			item = bytes.TrimSpace(item)
			if len(item) == 0 || item[0] != '{' {
				return typeErr(param, "an array of objects", item)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(item, &fields); err != nil {
				return typeErr(param, "an array of objects", item)
			}
			for key, v := range fields {
				var err error
				switch key {
				case "name":
					err = stringInto(&out[i].Name)(v, param)
				case "scale":
					err = floatInto(&out[i].Scale)(v, param)
				default:
					return fieldErr(param, CodeUnknownParameter, "Unrecognized argument in '%s': %s (want name and scale).", param, key)
				}
				if err != nil {
					return err
				}
			}
		}
		*dst = out
		return nil
	}
}

// SpecLoRAs is the pipeline's form of a request's loras.
func SpecLoRAs(in []LoRA) []spec.LoRA {
	if len(in) == 0 {
		return nil
	}
	out := make([]spec.LoRA, len(in))
	for i, l := range in {
		out[i] = spec.LoRA{Name: l.Name, Scale: 1}
		if l.Scale != nil {
			out[i].Scale = *l.Scale
		}
	}
	return out
}

// checkLoRAs applies the pipeline's LoRA limits; which names exist is the
// model's business.
func checkLoRAs(loras []LoRA) error {
	err := spec.ValidateLoRAs(SpecLoRAs(loras))
	if pe := (*spec.ParamError)(nil); errors.As(err, &pe) {
		return fieldErr(pe.Param, CodeInvalidValue, "Invalid 'loras': %s.", pe.Message)
	}
	return err
}
