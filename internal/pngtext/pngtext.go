// Package pngtext reads the text chunks of a PNG file, for the tests that
// check the parameters sdgate writes into its images.
package pngtext

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Read returns the text chunks of a PNG file by keyword (tEXt and
// uncompressed iTXt), to check what the encoder wrote.
func Read(data []byte) (map[string]string, error) {
	if len(data) < 8 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return nil, fmt.Errorf("not a PNG file")
	}
	out := map[string]string{}
	for p := data[8:]; len(p) >= 12; {
		n := int(binary.BigEndian.Uint32(p))
		if n < 0 || 12+n > len(p) {
			return nil, fmt.Errorf("truncated PNG chunk")
		}
		typ, body := string(p[4:8]), p[8:8+n]
		switch typ {
		case "tEXt":
			if k, v, ok := bytes.Cut(body, []byte{0}); ok {
				runes := make([]rune, len(v))
				for i, c := range v {
					runes[i] = rune(c)
				}
				out[string(k)] = string(runes)
			}
		case "iTXt":
			if k, rest, ok := bytes.Cut(body, []byte{0}); ok && len(rest) >= 2 && rest[0] == 0 {
				rest = rest[2:]
				if _, rest, ok = bytes.Cut(rest, []byte{0}); ok { // language
					if _, text, ok := bytes.Cut(rest, []byte{0}); ok { // translated keyword
						out[string(k)] = string(text)
					}
				}
			}
		}
		p = p[12+n:]
	}
	return out, nil
}
