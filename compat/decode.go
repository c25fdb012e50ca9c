package compat

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MessageInvalidJSON is OpenAI's wording for a body that is not a JSON object.
const MessageInvalidJSON = "We could not parse the JSON body of your request. " +
	"(HINT: This likely means you aren't using your HTTP library correctly. " +
	"The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"

// DecodeImageGenerationRequest parses a generations body field by field so
// that every type mistake names its field. Unknown fields are rejected, as
// upstream does; null counts as omitted. It does not apply model rules: see
// ValidateGeneration.
func DecodeImageGenerationRequest(body []byte) (ImageGenerationRequest, error) {
	var req ImageGenerationRequest
	fields, err := decodeObject(body)
	if err != nil {
		return req, err
	}
	// Walk the names in order so the same body always reports the same error.
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		decode := generationField(&req, name)
		if decode == nil {
			return req, fieldErr(name, CodeUnknownParameter, "Unrecognized request argument supplied: %s", name)
		}
		if err := decode(fields[name], name); err != nil {
			return req, err
		}
	}
	return req, nil
}

// generationField is the decoder of one generations field into req, nil
// for an unknown name; a switch, so a request builds only the decoders of
// the fields it sends.
func generationField(req *ImageGenerationRequest, name string) func(json.RawMessage, string) error {
	switch name {
	case "prompt":
		return stringInto(&req.Prompt)
	case "model":
		return stringInto(&req.Model)
	case "n":
		return intInto(&req.N)
	case "size":
		return stringInto(&req.Size)
	case "quality":
		return stringInto(&req.Quality)
	case "style":
		return stringInto(&req.Style)
	case "response_format":
		return stringInto(&req.ResponseFormat)
	case "output_format":
		return stringInto(&req.OutputFormat)
	case "output_compression":
		return intInto(&req.OutputCompression)
	case "background":
		return stringInto(&req.Background)
	case "moderation":
		return stringInto(&req.Moderation)
	case "user":
		return stringInto(&req.User)
	case "stream":
		return boolInto(&req.Stream)
	case "partial_images":
		return intInto(&req.PartialImages)
	case "negative_prompt":
		return stringInto(&req.NegativePrompt)
	case "seed":
		return uint64Into(&req.Seed)
	case "steps":
		return intInto(&req.Steps)
	case "guidance_scale":
		return floatInto(&req.GuidanceScale)
	case "scheduler":
		return stringInto(&req.Scheduler)
	case "loras":
		return lorasInto(&req.LoRAs)
	}
	return nil
}

// decodeObject splits a JSON object into its members; anything else is the
// invalid-JSON error.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &Error{Message: MessageInvalidJSON}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, &Error{Message: MessageInvalidJSON}
	}
	return fields, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// jsonKind names a JSON value's type for "expected X, but got Y" messages.
func jsonKind(raw json.RawMessage) string {
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	default:
		return "a number"
	}
}

func typeErr(param, want string, raw json.RawMessage) error {
	return fieldErr(param, CodeInvalidType,
		"Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonKind(raw))
}

func stringInto(dst *string) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		if raw[0] != '"' {
			return typeErr(param, "a string", raw)
		}
		if plainString(raw) { // what json.Unmarshal would give, without its reflection
			*dst = string(raw[1 : len(raw)-1])
			return nil
		}
		if json.Unmarshal(raw, dst) != nil {
			return typeErr(param, "a string", raw)
		}
		return nil
	}
}

// plainString: raw, a JSON string the body's parse already checked, has
// no escapes and only ASCII, so its bytes between the quotes are its value
// (json.Unmarshal would rewrite escapes and invalid UTF-8).
func plainString(raw json.RawMessage) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

func boolInto(dst **bool) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return typeErr(param, "a boolean", raw)
		}
		*dst = &v
		return nil
	}
}

// number returns the literal of a JSON number, or "" for any other value.
func number(raw json.RawMessage) string {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return ""
	}
	return string(raw)
}

func intInto(dst **int) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		lit := number(raw)
		v, err := strconv.ParseInt(lit, 10, 0)
		if err != nil {
			return integerErr(param, lit, raw, err)
		}
		n := int(v)
		*dst = &n
		return nil
	}
}

func uint64Into(dst **uint64) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		lit := number(raw)
		if strings.HasPrefix(lit, "-") {
			if _, err := strconv.ParseInt(lit, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
				return fieldErr(param, CodeIntegerBelowMin,
					"Invalid '%s': integer below minimum value. Expected a value >= 0, but got %s instead.", param, lit)
			}
		}
		v, err := strconv.ParseUint(lit, 10, 64)
		if err != nil {
			return integerErr(param, lit, raw, err)
		}
		*dst = &v
		return nil
	}
}

// integerErr tells an integer too large for the field from a value that is
// not an integer at all.
func integerErr(param, lit string, raw json.RawMessage, err error) error {
	if lit != "" && errors.Is(err, strconv.ErrRange) {
		if strings.HasPrefix(lit, "-") {
			return fieldErr(param, CodeIntegerBelowMin, "Invalid '%s': integer below minimum value.", param)
		}
		return fieldErr(param, CodeIntegerAboveMax, "Invalid '%s': integer above maximum value.", param)
	}
	return typeErr(param, "an integer", raw)
}

func floatInto(dst **float64) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		lit := number(raw)
		v, err := strconv.ParseFloat(lit, 64)
		if lit == "" || (err != nil && !errors.Is(err, strconv.ErrRange)) {
			return typeErr(param, "a number", raw)
		}
		if math.IsInf(v, 0) || err != nil {
			return fieldErr(param, CodeInvalidValue, "Invalid '%s': %s is out of range.", param, lit)
		}
		*dst = &v
		return nil
	}
}
