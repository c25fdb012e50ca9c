package compat

import (
	"encoding/json"
	"strconv"
)

// AppendJSON appends r as encoding/json marshals it, byte for byte, without
// reflection: the images response is written on every cache hit, where
// json.Marshal's reflection and allocations were a tenth of the server's
// work. TestAppendJSONMatchesMarshal holds the two to the same bytes and
// fails when a field is added to the response types without its encoding.
func (r ImagesResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"created":`...)
	b = strconv.AppendInt(b, r.Created, 10)
	b = append(b, `,"data":`...)
	if r.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, d := range r.Data {
			if i > 0 {
				b = append(b, ',')
			}
			b = d.appendJSON(b)
		}
		b = append(b, ']')
	}
	b = appendOptionalString(b, "background", r.Background)
	b = appendOptionalString(b, "output_format", r.OutputFormat)
	b = appendOptionalString(b, "quality", r.Quality)
	b = appendOptionalString(b, "size", r.Size)
	if r.Usage != nil {
		b = append(b, `,"usage":`...)
		b = r.Usage.appendJSON(b)
	}
	return append(b, '}')
}

func (d ImageData) appendJSON(b []byte) []byte {
	b = append(b, '{')
	start := len(b)
	for _, f := range [...]struct{ name, value string }{{"url", d.URL}, {"b64_json", d.B64JSON}, {"revised_prompt", d.RevisedPrompt}} {
		if f.value == "" {
			continue
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = appendJSONString(append(append(append(b, '"'), f.name...), `":`...), f.value)
	}
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, `"seed":`...)
	b = strconv.AppendUint(b, d.Seed, 10)
	return append(b, '}')
}

func (u ImageUsage) appendJSON(b []byte) []byte {
	b = append(b, `{"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"input_tokens_details":`...)
	b = appendTokenDetails(b, u.InputTokensDetails.TextTokens, u.InputTokensDetails.ImageTokens)
	if u.OutputTokensDetails != nil {
		b = append(b, `,"output_tokens_details":`...)
		b = appendTokenDetails(b, u.OutputTokensDetails.TextTokens, u.OutputTokensDetails.ImageTokens)
	}
	return append(b, '}')
}

func appendTokenDetails(b []byte, text, image int) []byte {
	b = append(b, `{"text_tokens":`...)
	b = strconv.AppendInt(b, int64(text), 10)
	b = append(b, `,"image_tokens":`...)
	b = strconv.AppendInt(b, int64(image), 10)
	return append(b, '}')
}

// appendOptionalString appends `,"name":"value"` unless value is empty
// (omitempty).
func appendOptionalString(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return appendJSONString(b, value)
}

// appendJSONString appends s quoted as encoding/json quotes it. Strings of
// printable ASCII that json escapes nothing of (URLs, base64, sizes) are
// copied; anything else goes through json.Marshal, so the escaping rules
// (HTML characters, U+2028, invalid UTF-8) stay encoding/json's own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
