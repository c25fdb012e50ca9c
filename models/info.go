// Package models knows which models exist and where they live, loads them on
// first use, and owns the GPU: one worker behind a bounded queue.
package models

import (
	"errors"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

var (
	// ErrModelNotFound: no servable model or alias has that name.
	ErrModelNotFound = errors.New("model not found")
	// ErrQueueFull: the bounded queue is full; answer 429 at once.
	ErrQueueFull = errors.New("queue full")
	// ErrQueueTimeout: the job waited past its deadline and never ran.
	ErrQueueTimeout = errors.New("timed out waiting in the queue")
	// ErrClosed: the worker is shutting down and takes no more jobs.
	ErrClosed = errors.New("worker closed")
	// ErrNoWorker: no live worker serves the model (scale-out gateways);
	// answer 503 at once.
	ErrNoWorker = errors.New("no worker serves the model")
)

// Info describes one servable model to the API layer.
type Info struct {
	ID          string
	DisplayName string // from sdgate.json; "" = the id
	Dir         string // the model's folder
	Created     time.Time
	// Family is the model family (spec.FamilySD1, FamilySD2, FamilySDXL);
	// Buckets the sizes it generates OpenAI sizes at (spec.Buckets).
	Family          string
	Buckets         []spec.Size
	NativeWidth     int
	NativeHeight    int
	DefaultSteps    int
	DefaultGuidance float64
	Scheduler       string // the model's own scheduler name
	Inpainting      bool   // the UNet takes a mask (9 input channels)
	CanEncode       bool   // a VAE encoder is present (img2img, edits, variations)
	// Digest fingerprints this version of the folder (FolderDigest) for
	// cache keys shared between instances; "" when it could not be read.
	Digest string
	// From the folder's sdgate.json: OpenAI (or any) names that point here,
	// and per-model quality -> steps and style -> guidance mappings.
	Aliases       []string
	QualitySteps  map[string]int
	StyleGuidance map[string]float64
	// LoRAs are the LoRAs requests may name for this model (its folder's
	// loras/, by name); read-only.
	LoRAs map[string]LoRAFile
	// A LoRA alias (sdgate.json) is a model of its own: Base is the folder
	// model it merges Applied into; "" for folder models.
	Base    string
	Applied []AppliedLoRA
}
