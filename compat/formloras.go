package compat

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/sd/spec"
)

// The "loras" extension in multipart bodies (edits, variations) comes in
// two forms:
//
//   - loras: one text field holding the JSON array generations take,
//     [{"name": "style", "scale": 0.8}];
//   - bracketed fields, as form encoders (the OpenAI SDKs among them) spell
//     an array of objects: loras[][name]=style, loras[][scale]=0.8, one
//     pair per LoRA in order (a key seen again starts the next LoRA), or
//     indexed, loras[0][name], loras[0][scale], loras[1][name], ...
//
// A body uses one form. Errors are on param "loras", as for generations.

// formField is a text part kept in the order sent (bracketed loras fields
// may repeat).
type formField struct{ name, value string }

// isLoRAField says whether a form part is a bracketed loras field.
func isLoRAField(name string) bool { return strings.HasPrefix(name, "loras[") }

// formLoRAsInto decodes the loras text field: a JSON array.
func formLoRAsInto(dst *[]LoRA) fieldDecoder {
	return func(v, param string) error {
		raw := bytes.TrimSpace([]byte(v))
		if len(raw) == 0 {
			return nil
		}
		if !json.Valid(raw) {
			return fieldErr(param, CodeInvalidType,
				"Invalid type for '%s': expected a JSON array of {\"name\", \"scale\"} objects, but got '%s' instead.", param, clip(v))
		}
		return lorasInto(dst)(raw, param)
	}
}

// loras decodes f's bracketed loras fields into dst (after decodeValues).
func (f form) loras(dst *[]LoRA) error {
	return bracketLoRAs(f.loraFields, strings.TrimSpace(f.values["loras"]) != "", dst)
}

// bracketLoRAs decodes the bracketed loras fields into dst; a body that
// also has the loras field (had) is refused.
func bracketLoRAs(fields []formField, had bool, dst *[]LoRA) error {
	if len(fields) == 0 {
		return nil
	}
	const param = "loras"
	if had {
		return fieldErr(param, CodeInvalidValue, "Invalid 'loras': send either the loras field (a JSON array) or loras[...][name] fields, not both.")
	}
	var entries []map[string]string
	indexed := map[int]map[string]string{}
	for _, f := range fields {
		idx, key, ok := splitLoRAField(f.name)
		if !ok {
			return fieldErr(f.name, CodeUnknownParameter, "Unrecognized request argument supplied: %s (want loras[][name], loras[][scale] or loras[N][...])", f.name)
		}
		if key != "name" && key != "scale" {
			return fieldErr(param, CodeUnknownParameter, "Unrecognized argument in '%s': %s (want name and scale).", param, key)
		}
		if (idx < 0 && len(indexed) > 0) || (idx >= 0 && len(entries) > 0) {
			return fieldErr(param, CodeInvalidValue, "Invalid 'loras': loras[][...] and loras[N][...] fields mixed in one body.")
		}
		var e map[string]string
		switch {
		case idx < 0:
			if n := len(entries); n == 0 || hasKey(entries[n-1], key) {
				entries = append(entries, map[string]string{})
			}
			e = entries[len(entries)-1]
		default:
			if idx >= spec.MaxLoRAs {
				return fieldErr(param, CodeInvalidValue, "Invalid '%s': at most %d LoRAs, got index %d.", param, spec.MaxLoRAs, idx)
			}
			if e = indexed[idx]; e == nil {
				e = map[string]string{}
				indexed[idx] = e
			}
			if hasKey(e, key) {
				return fieldErr(param, CodeInvalidValue, "Invalid 'loras': %s was sent more than once.", f.name)
			}
		}
		e[key] = f.value
	}
	for i := range len(indexed) {
		if indexed[i] == nil {
			return fieldErr(param, CodeInvalidValue, "Invalid 'loras': indexes must run 0, 1, 2, ... without gaps; %d is missing.", i)
		}
		entries = append(entries, indexed[i])
	}
	if len(entries) > spec.MaxLoRAs {
		return fieldErr(param, CodeInvalidValue, "Invalid '%s': at most %d LoRAs, got %d.", param, spec.MaxLoRAs, len(entries))
	}
	out := make([]LoRA, len(entries))
	for i, e := range entries {
		out[i].Name = e["name"]
		if s, ok := e["scale"]; ok {
			if err := formFloatInto(&out[i].Scale)(s, param); err != nil {
				return err
			}
		}
	}
	*dst = out
	return nil
}

// splitLoRAField reads loras[][key] (idx -1) or loras[N][key].
func splitLoRAField(name string) (idx int, key string, ok bool) {
	rest, _ := strings.CutPrefix(name, "loras[")
	i, rest, found := strings.Cut(rest, "][")
	if !found || !strings.HasSuffix(rest, "]") {
		return 0, "", false
	}
	key = strings.TrimSuffix(rest, "]")
	if i == "" {
		return -1, key, true
	}
	n, err := strconv.Atoi(i)
	if err != nil || n < 0 || strconv.Itoa(n) != i {
		return 0, "", false
	}
	return n, key, true
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
