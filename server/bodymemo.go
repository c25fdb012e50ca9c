package server

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sdgate/sdgate/compat"
)

// A cache hit is, by definition, a body the server has seen before, and
// decoding it field by field (so that every type mistake names its field)
// was the largest single cost of a hit. Decoding is a pure function of the
// bytes, so the decoded form of recent bodies is kept and reused: nothing
// about the model, the key or the time enters it, and validation still
// runs on every request.

const (
	// bodyMemoEntries bounds the memo; with bodyMemoMaxBody it holds at
	// most 4 MiB of bodies.
	bodyMemoEntries = 4096
	// bodyMemoMaxBody: larger bodies (long prompts, LoRA lists) are decoded
	// every time; typical generations bodies are a few hundred bytes.
	bodyMemoMaxBody = 1 << 10
)

// generationsMemo maps a generations body to its decoded request. Entries
// are shared between requests: no caller writes through the request's
// pointer fields or into its LoRAs.
type generationsMemo struct {
	recent *lru.Cache[string, compat.ImageGenerationRequest]
}

func newGenerationsMemo() *generationsMemo {
	recent, err := lru.New[string, compat.ImageGenerationRequest](bodyMemoEntries)
	if err != nil { // only for a size <= 0
		panic(err)
	}
	return &generationsMemo{recent: recent}
}

// decode is compat.DecodeImageGenerationRequest, answered from the memo for
// a body seen before. Bodies that fail to decode are not kept: they cost
// their decode each time, as before.
func (m *generationsMemo) decode(body []byte) (compat.ImageGenerationRequest, error) {
	if len(body) > bodyMemoMaxBody {
		return compat.DecodeImageGenerationRequest(body)
	}
	key := string(body)
	if req, ok := m.recent.Get(key); ok {
		return req, nil
	}
	req, err := compat.DecodeImageGenerationRequest(body)
	if err == nil {
		m.recent.Add(key, req)
	}
	return req, err
}
