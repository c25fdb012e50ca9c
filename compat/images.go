// Package compat holds the OpenAI Images API as sdgate speaks it on the wire:
// request and response types, the error envelope, each model family's rules
// and the validation that enforces them. It imports no package of ours.
package compat

// ImageGenerationRequest is the body of POST /v1/images/generations.
// Numbers and booleans are pointers so that an omitted field (or null) can be
// told from an explicit zero; an empty string means "omitted".
type ImageGenerationRequest struct {
	Prompt            string `json:"prompt"`
	Model             string `json:"model,omitempty"`
	N                 *int   `json:"n,omitempty"`
	Size              string `json:"size,omitempty"`
	Quality           string `json:"quality,omitempty"`
	Style             string `json:"style,omitempty"`
	ResponseFormat    string `json:"response_format,omitempty"`
	OutputFormat      string `json:"output_format,omitempty"`
	OutputCompression *int   `json:"output_compression,omitempty"`
	Background        string `json:"background,omitempty"`
	Moderation        string `json:"moderation,omitempty"`
	User              string `json:"user,omitempty"`
	Stream            *bool  `json:"stream,omitempty"`
	PartialImages     *int   `json:"partial_images,omitempty"`

	// sdgate extensions.
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	Seed           *uint64  `json:"seed,omitempty"`
	Steps          *int     `json:"steps,omitempty"`
	GuidanceScale  *float64 `json:"guidance_scale,omitempty"`
	Scheduler      string   `json:"scheduler,omitempty"`
	LoRAs          []LoRA   `json:"loras,omitempty"`
}

// Values of the enumerated request fields.
const (
	ResponseFormatURL     = "url"
	ResponseFormatB64JSON = "b64_json"

	OutputFormatPNG  = "png"
	OutputFormatJPEG = "jpeg"
	OutputFormatWEBP = "webp"

	SizeAuto = "auto"

	QualityStandard = "standard"
	QualityHD       = "hd"
	QualityLow      = "low"
	QualityMedium   = "medium"
	QualityHigh     = "high"
	QualityAuto     = "auto"

	StyleVivid   = "vivid"
	StyleNatural = "natural"

	BackgroundTransparent = "transparent"
	BackgroundOpaque      = "opaque"
	BackgroundAuto        = "auto"

	ModerationLow  = "low"
	ModerationAuto = "auto"
)

// ImagesResponse is the answer to generations (and later edits and
// variations). Background, OutputFormat, Quality and Size echo what was
// produced, as the current spec does for GPT image models.
type ImagesResponse struct {
	Created      int64       `json:"created"`
	Data         []ImageData `json:"data"`
	Background   string      `json:"background,omitempty"`
	OutputFormat string      `json:"output_format,omitempty"`
	Quality      string      `json:"quality,omitempty"`
	Size         string      `json:"size,omitempty"`
	Usage        *ImageUsage `json:"usage,omitempty"`
}

// ImageData is one image: exactly one of URL and B64JSON is set. Seed is an
// sdgate extension: the seed that reproduces this image alone.
type ImageData struct {
	URL           string `json:"url,omitempty"`
	B64JSON       string `json:"b64_json,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
	Seed          uint64 `json:"seed"`
}

// ImageUsage is the token accounting GPT image models report. Every figure
// is always written, even when zero, because openai-python requires them.
// OutputTokensDetails is optional upstream (the SDKs type it so) and
// always sent by sdgate.
type ImageUsage struct {
	TotalTokens         int                  `json:"total_tokens"`
	InputTokens         int                  `json:"input_tokens"`
	OutputTokens        int                  `json:"output_tokens"`
	InputTokensDetails  InputTokensDetails   `json:"input_tokens_details"`
	OutputTokensDetails *OutputTokensDetails `json:"output_tokens_details,omitempty"`
}

// InputTokensDetails splits InputTokens by modality.
type InputTokensDetails struct {
	TextTokens  int `json:"text_tokens"`
	ImageTokens int `json:"image_tokens"`
}

// OutputTokensDetails splits OutputTokens by modality. Stable Diffusion
// writes no text, so TextTokens is always 0.
type OutputTokensDetails struct {
	TextTokens  int `json:"text_tokens"`
	ImageTokens int `json:"image_tokens"`
}

// ImageStreamEvent is the data of one server-sent event of a streamed
// generation: image_generation.partial_image or image_generation.completed.
type ImageStreamEvent struct {
	Type              string      `json:"type"`
	B64JSON           string      `json:"b64_json"`
	PartialImageIndex *int        `json:"partial_image_index,omitempty"`
	CreatedAt         int64       `json:"created_at"`
	Size              string      `json:"size"`
	Quality           string      `json:"quality"`
	Background        string      `json:"background"`
	OutputFormat      string      `json:"output_format"`
	Seed              uint64      `json:"seed"`
	Usage             *ImageUsage `json:"usage,omitempty"`
}

// Stream event types.
const (
	EventImageGenerationPartial   = "image_generation.partial_image"
	EventImageGenerationCompleted = "image_generation.completed"
	EventImageEditPartial         = "image_edit.partial_image"
	EventImageEditCompleted       = "image_edit.completed"
	// EventError ends a stream that failed after its first event; its data
	// is {"type":"error","error":{...}} with the usual error body.
	EventError = "error"
)

// StreamErrorEvent is the data of an error event.
type StreamErrorEvent struct {
	Type  string    `json:"type"`
	Error ErrorBody `json:"error"`
}
