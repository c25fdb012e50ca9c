package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"sync"
)

// keyVersion starts every key's hashed encoding. Bump it whenever a field is
// added to Params or the encoding changes meaning, so that a shared store
// never serves an entry written under other rules.
const keyVersion = "sdgate/cache/key/v1"

// Params is everything that determines the bytes of a response's images.
// Fields that do not change pixels or encoding (user, response_format,
// stream, the API key) do not belong here, so they never split entries.
// Fill it with resolved values: the size, steps and guidance the pipeline
// will really use, not what the client left to defaults.
type Params struct {
	// Engine names what renders and encodes: sdgate's version, the
	// execution provider and precision (CPU fp32 and CUDA fp16 give
	// different pixels). It keeps instances of different builds or devices
	// apart when they share one Redis.
	Engine string

	ModelID     string
	ModelDigest string // ModelDigest of the model folder
	Operation   string // "generate", "edit", "variation", ...

	Prompt         string
	NegativePrompt string

	// Seed is ignored unless HasSeed: a seedless request (prompt caching)
	// gets its own key, whatever seed was drawn for it.
	Seed    uint64
	HasSeed bool

	Steps int
	// Guidance is ignored unless HasGuidance (unset means the model's
	// default, which the model digest covers).
	Guidance    float64
	HasGuidance bool
	Scheduler   string

	Width, Height             int // the size the pipeline generates
	OutputWidth, OutputHeight int // the size delivered after resizing
	N                         int // images in the response; image i uses Seed+i

	// Edits and variations.
	Strength     float64
	ImageDigests []string // Digest of each input image, in request order
	MaskDigest   string

	OutputFormat      string // png, jpeg, webp
	OutputCompression int

	// Extra holds pixel-determining knobs that have no field yet (a LoRA and
	// its weight, say). Order of insertion does not matter.
	Extra map[string]string
}

// Key identifies one cache entry: the SHA-256 of Params' canonical encoding.
type Key [sha256.Size]byte

// String is the key in hex, as stores and logs spell it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// KeyOf is the canonical key of p. Every field is written in a fixed order
// behind its name and a length, so no two different Params share an
// encoding; -0 and 0 (and every NaN) encode alike.
func KeyOf(p Params) Key {
	buf := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(buf)
	w := keyWriter{b: slices.Grow((*buf)[:0], 1024+len(p.Prompt)+len(p.NegativePrompt))}
	defer func() { *buf = w.b }() // keep the grown buffer for the next key
	w.str("version", keyVersion)
	w.str("engine", p.Engine)
	w.str("model_id", p.ModelID)
	w.str("model_digest", p.ModelDigest)
	w.str("operation", p.Operation)
	w.str("prompt", p.Prompt)
	w.str("negative_prompt", p.NegativePrompt)
	if p.HasSeed {
		w.uint("seed", p.Seed)
	} else {
		w.str("seed", "none")
	}
	w.int("steps", p.Steps)
	if p.HasGuidance {
		w.float("guidance", p.Guidance)
	} else {
		w.str("guidance", "default")
	}
	w.str("scheduler", p.Scheduler)
	w.int("width", p.Width)
	w.int("height", p.Height)
	w.int("output_width", p.OutputWidth)
	w.int("output_height", p.OutputHeight)
	w.int("n", p.N)
	w.float("strength", p.Strength)
	w.strs("image_digests", p.ImageDigests)
	w.str("mask_digest", p.MaskDigest)
	w.str("output_format", p.OutputFormat)
	w.int("output_compression", p.OutputCompression)
	keys := make([]string, 0, len(p.Extra))
	for k := range p.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.uint("extra", uint64(len(keys)))
	for _, k := range keys {
		w.bytes(k)
		w.bytes(p.Extra[k])
	}
	return sha256.Sum256(w.b)
}

// keyBuffers recycles KeyOf's encoding buffers: one per cache lookup.
var keyBuffers = sync.Pool{New: func() any { return new([]byte) }}

// keyWriter lays out tagged, length-prefixed fields to be hashed at once.
type keyWriter struct{ b []byte }

// bytes appends len(v) as 8 bytes big-endian, then v.
func (w *keyWriter) bytes(v string) {
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(len(v)))
	w.b = append(w.b, v...)
}

func (w *keyWriter) str(name, v string) {
	w.bytes(name)
	w.bytes(v)
}

func (w *keyWriter) uint(name string, v uint64) {
	w.bytes(name)
	w.b = binary.BigEndian.AppendUint64(w.b, 8)
	w.b = binary.BigEndian.AppendUint64(w.b, v)
}

func (w *keyWriter) int(name string, v int) { w.uint(name, uint64(int64(v))) }

func (w *keyWriter) float(name string, v float64) {
	bits := math.Float64bits(v)
	switch {
	case v == 0: // +0 and -0
		bits = 0
	case math.IsNaN(v):
		bits = math.Float64bits(math.NaN())
	}
	w.uint(name, bits)
}

func (w *keyWriter) strs(name string, vs []string) {
	w.uint(name, uint64(len(vs)))
	for _, v := range vs {
		w.bytes(v)
	}
}

// Digest names input bytes (an edit's image or mask) for Params: the
// SHA-256 of b as "sha256:<hex>".
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
