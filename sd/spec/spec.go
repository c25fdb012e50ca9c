// Package spec holds the limits that the API layer (compat, server) and the
// pipeline (sd) share, in a cgo-free leaf: one value, one place.
package spec

import (
	"crypto/rand"
	"encoding/binary"
)

// Limits on one request, whatever the model.
const (
	MinSteps    = 1
	MaxSteps    = 150
	MaxImages   = 16
	MaxGuidance = 30
)

// MaxPromptChunks bounds the 75-token windows of one prompt (12 x 75 = 900
// tokens, some 4000 characters of English): cross-attention grows with the
// token count, and a prompt beyond it is truncated, as revised_prompt shows.
const MaxPromptChunks = 12

// MaxSeed is the largest seed a request may carry: torch's CPU generator
// accepts any 64-bit seed, but JSON clients (JavaScript numbers) hold
// integers exactly only up to 2^53-1, and a seed must come back unchanged.
const MaxSeed = 1<<53 - 1

// RandomSeed draws the seed of a request that names none, uniformly from
// [0, MaxSeed-MaxImages]: image i of n uses seed+i, which then stays a
// valid seed too.
func RandomSeed() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return binary.LittleEndian.Uint64(b[:]) % (MaxSeed - MaxImages + 1)
}
