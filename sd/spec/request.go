package spec

import (
	"image"
	"time"
)

// Request is one image job for a loaded model. Zero values mean "the
// model's default" where a field says so; Validate rejects everything else
// that is out of range instead of repairing it.
type Request struct {
	Prompt         string
	NegativePrompt string
	Width, Height  int     // multiples of 8; 0 = the model's native size
	Steps          int     // MinSteps..MaxSteps; 0 = the model's default
	Guidance       float64 // classifier-free guidance scale; <= 1 disables it. Use HasGuidance to tell 0 from unset.
	HasGuidance    bool
	Scheduler      string // "" = the model's own scheduler
	Seed           uint64 // image i uses Seed+i
	HasSeed        bool   // false: a random seed is drawn and reported
	N              int    // images in one batch; 0 = 1

	// Image-to-image and inpainting. InitImage, when set, is the picture to
	// start from; it must already have the request's Width x Height. Denoising
	// starts at Strength (0..1; HasStrength false = 1 with a Mask, else
	// DefaultStrength) of the schedule.
	InitImage   image.Image
	Strength    float64
	HasStrength bool
	// Mask marks the pixels to repaint (value >= 128); the others come back
	// exactly as in InitImage. Same size as InitImage; nil repaints all.
	Mask *image.Gray

	// LoRAs are merged into the model's weights for this request, in order
	// (a resident merged variant of the model serves it).
	LoRAs []LoRA

	// Progress, when set, is called after every denoising step.
	Progress func(step, total int)
	// PartialImages (0..MaxPartialImages) asks for previews at evenly
	// spaced steps, handed to Partial (see Partial's type).
	PartialImages int
	Partial       func(Partial)
}

// DefaultStrength is how far image-to-image re-imagines an image without a
// mask (diffusers' img2img default).
const DefaultStrength = 0.8

// Image is one generated picture and the seed that reproduces it alone.
type Image struct {
	Image *image.RGBA
	Seed  uint64
}

// Result is what a Request produced.
type Result struct {
	Images []Image
	// Prompt is the text that actually conditioned the images: the prompt
	// after CLIP's cleanup and truncation to the model's token limit.
	Prompt    string
	Truncated bool
	Width     int
	Height    int
	Steps     int // as requested (what a PNG's parameters say)
	StepsRun  int // denoising steps actually run per image (fewer for image-to-image)
	Guidance  float64
	Scheduler string
	// Timings: ORT is the time spent inside ONNX Runtime calls, Total the
	// whole pipeline (tokenize, encode, denoise, decode, convert).
	ORT   time.Duration
	Total time.Duration
	// ModelLoad is set by the model registry when this request waited for
	// the model's sessions to be created (a cold start); QueueWait is how
	// long it waited for the GPU worker.
	ModelLoad time.Duration
	QueueWait time.Duration
	// BatchSize is how many requests shared this one's UNet calls (1 when
	// it ran alone; 0 from a pipeline that does not batch).
	BatchSize int
}
