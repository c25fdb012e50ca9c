package compat

import (
	"io"
	"slices"
)

// ImageEditRequest is the multipart body of POST /v1/images/edits. Text
// fields follow ImageGenerationRequest: pointers tell omitted from zero and
// an empty value means omitted.
type ImageEditRequest struct {
	Images []Upload // "image" parts, or repeated "image[]" parts, in order
	Mask   *Upload
	// JSON is true for the application/json body form (DecodeImageEditJSON),
	// which upstream takes for GPT image models only.
	JSON bool

	Prompt            string
	Model             string
	N                 *int
	Size              string
	Quality           string
	ResponseFormat    string
	OutputFormat      string
	OutputCompression *int
	Background        string
	Moderation        string
	InputFidelity     string
	User              string
	Stream            *bool
	PartialImages     *int

	// sdgate extensions.
	NegativePrompt string
	Seed           *uint64
	Steps          *int
	GuidanceScale  *float64
	Scheduler      string
	Strength       *float64 // 0 < strength <= 1: how much of the image is re-imagined
	LoRAs          []LoRA   // "loras", or loras[][name] / loras[N][name] fields (formloras.go)
}

// ImageVariationRequest is the multipart body of POST /v1/images/variations.
// Prompt is an sdgate extension: upstream variations take none.
type ImageVariationRequest struct {
	Images []Upload // exactly one is valid; kept as a list to report extras

	Model          string
	N              *int
	Size           string
	ResponseFormat string
	User           string

	// sdgate extensions.
	Prompt         string
	NegativePrompt string
	Seed           *uint64
	Steps          *int
	GuidanceScale  *float64
	Scheduler      string
	Strength       *float64
	LoRAs          []LoRA
}

// Values of input_fidelity (GPT image edits; accepted, not used: Stable
// Diffusion has no such knob).
const (
	InputFidelityHigh = "high"
	InputFidelityLow  = "low"
)

// ReadImageEditRequest reads an edits body from r, a multipart/form-data
// stream with the given boundary. Unknown and repeated text fields are
// rejected; files are kept as sent (see Upload). It does not apply model
// rules: see ValidateEdit. Errors are *Error, except a failure of r itself,
// which is returned wrapped.
func ReadImageEditRequest(r io.Reader, boundary string) (ImageEditRequest, error) {
	var req ImageEditRequest
	f, err := readForm(r, boundary, map[string]bool{"image": true, "image[]": true, "mask": true})
	if err != nil {
		return req, err
	}
	for i, u := range f.files {
		if u.Field != "mask" {
			req.Images = append(req.Images, u)
			continue
		}
		if req.Mask != nil {
			return req, fieldErr("mask", CodeInvalidValue, "Invalid 'mask': the field was sent more than once.")
		}
		req.Mask = &f.files[i]
	}
	err = decodeValues(f.values, map[string]fieldDecoder{
		"prompt":             textInto(&req.Prompt),
		"model":              textInto(&req.Model),
		"n":                  formCountInto(&req.N),
		"size":               textInto(&req.Size),
		"quality":            textInto(&req.Quality),
		"response_format":    textInto(&req.ResponseFormat),
		"output_format":      textInto(&req.OutputFormat),
		"output_compression": formIntInto(&req.OutputCompression),
		"background":         textInto(&req.Background),
		"moderation":         textInto(&req.Moderation),
		"input_fidelity":     textInto(&req.InputFidelity),
		"user":               textInto(&req.User),
		"stream":             formBoolInto(&req.Stream),
		"partial_images":     formIntInto(&req.PartialImages),
		"negative_prompt":    textInto(&req.NegativePrompt),
		"seed":               formUint64Into(&req.Seed),
		"steps":              formIntInto(&req.Steps),
		"guidance_scale":     formFloatInto(&req.GuidanceScale),
		"scheduler":          textInto(&req.Scheduler),
		"strength":           formFloatInto(&req.Strength),
		"loras":              formLoRAsInto(&req.LoRAs),
	})
	if err != nil {
		return req, err
	}
	return req, f.loras(&req.LoRAs)
}

// ReadImageVariationRequest reads a variations body; see ReadImageEditRequest.
func ReadImageVariationRequest(r io.Reader, boundary string) (ImageVariationRequest, error) {
	var req ImageVariationRequest
	f, err := readForm(r, boundary, map[string]bool{"image": true, "image[]": true})
	if err != nil {
		return req, err
	}
	req.Images = f.files
	err = decodeValues(f.values, map[string]fieldDecoder{
		"model":           textInto(&req.Model),
		"n":               formCountInto(&req.N),
		"size":            textInto(&req.Size),
		"response_format": textInto(&req.ResponseFormat),
		"user":            textInto(&req.User),
		"prompt":          textInto(&req.Prompt),
		"negative_prompt": textInto(&req.NegativePrompt),
		"seed":            formUint64Into(&req.Seed),
		"steps":           formIntInto(&req.Steps),
		"guidance_scale":  formFloatInto(&req.GuidanceScale),
		"scheduler":       textInto(&req.Scheduler),
		"strength":        formFloatInto(&req.Strength),
		"loras":           formLoRAsInto(&req.LoRAs),
	})
	if err != nil {
		return req, err
	}
	return req, f.loras(&req.LoRAs)
}

// Generation is the part of an edit that a generation request also has:
// the shared rules and translation apply to it.
func (r ImageEditRequest) Generation() ImageGenerationRequest {
	return ImageGenerationRequest{
		Prompt: r.Prompt, Model: r.Model, N: r.N, Size: r.Size, Quality: r.Quality,
		ResponseFormat: r.ResponseFormat, OutputFormat: r.OutputFormat, OutputCompression: r.OutputCompression,
		Background: r.Background, Moderation: r.Moderation, User: r.User, Stream: r.Stream, PartialImages: r.PartialImages,
		NegativePrompt: r.NegativePrompt, Seed: r.Seed, Steps: r.Steps, GuidanceScale: r.GuidanceScale,
		Scheduler: r.Scheduler, LoRAs: r.LoRAs,
	}
}

// Generation is the part of a variation that a generation request also has.
func (r ImageVariationRequest) Generation() ImageGenerationRequest {
	return ImageGenerationRequest{
		Prompt: r.Prompt, Model: r.Model, N: r.N, Size: r.Size, ResponseFormat: r.ResponseFormat,
		User: r.User, NegativePrompt: r.NegativePrompt, Seed: r.Seed, Steps: r.Steps,
		GuidanceScale: r.GuidanceScale, Scheduler: r.Scheduler, LoRAs: r.LoRAs,
	}
}

// DefaultEditModel is the model an edit without "model" gets: upstream's
// default for both body forms today.
const DefaultEditModel = string(FamilyGPTImage15)

// EditRules are a family's limits on edits and variations.
type EditRules struct {
	Edits, Variations bool  // the family offers the endpoint
	MaxImages         int   // images per edit (upstream)
	MaxImageBytes     int64 // per image
	MaxMaskBytes      int64
	Square            bool     // images must be square
	InputFidelities   []string // nil: input_fidelity is not part of the family
}

// Byte limits of uploads. Upstream says "less than 4MB" / "50MB"; sdgate
// reads MB as MiB, the more permissive reading.
const (
	MaxDallE2ImageBytes = 4 << 20
	MaxMaskBytes        = 4 << 20
)

// MaxEditImages is how many images one edit may carry upstream (gpt-image-1).
const MaxEditImages = 16

// EditRulesFor returns the edit limits of a family; dall-e-3 (and an
// unknown family) offers neither endpoint.
func EditRulesFor(f Family) EditRules {
	fidelities := []string{InputFidelityHigh, InputFidelityLow}
	if IsGPTImage(f) {
		return EditRules{Edits: true, MaxImages: MaxEditImages,
			MaxImageBytes: MaxUploadBytes, MaxMaskBytes: MaxMaskBytes, InputFidelities: fidelities}
	}
	switch f {
	case FamilyDallE2:
		return EditRules{Edits: true, Variations: true, MaxImages: 1,
			MaxImageBytes: MaxDallE2ImageBytes, MaxMaskBytes: MaxMaskBytes, Square: true}
	case FamilyLocal:
		return EditRules{Edits: true, Variations: true, MaxImages: MaxEditImages,
			MaxImageBytes: MaxUploadBytes, MaxMaskBytes: MaxUploadBytes, InputFidelities: fidelities}
	}
	return EditRules{}
}

// ValidateEdit checks an edit against the family's rules and returns the
// first problem as *Error. Decoding the images (formats, sizes, the mask's
// match) is left to the caller, which owns the image decoders.
func ValidateEdit(req ImageEditRequest, r Rules) error {
	er := EditRulesFor(r.Family)
	if !er.Edits {
		return fieldErr("model", CodeInvalidValue,
			"Invalid 'model': %s does not support image edits. Use dall-e-2, a gpt-image model or a local model.", r.Family)
	}
	if req.JSON && r.Family == FamilyDallE2 {
		return fieldErr("model", CodeInvalidValue,
			"Invalid 'model': JSON edit bodies support GPT image models only; send dall-e-2 edits as multipart/form-data.")
	}
	if IsGPTImage(r.Family) && !req.JSON {
		// Upstream's multipart edit form also takes "standard" for GPT models.
		r.Qualities = append(slices.Clip(r.Qualities), QualityStandard)
	}
	checks := []func() error{
		func() error { return checkImages(req.Images, er, "an edit") },
		func() error { return checkUpload(req.Mask, er.MaxMaskBytes) },
		func() error { return ValidateGeneration(req.Generation(), r) },
		func() error { return checkStrength(req.Strength) },
		func() error { return checkEnum("input_fidelity", req.InputFidelity, er.InputFidelities, r.Family) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// ValidateVariation checks a variation against the family's rules.
func ValidateVariation(req ImageVariationRequest, r Rules) error {
	er := EditRulesFor(r.Family)
	if !er.Variations {
		return fieldErr("model", CodeInvalidValue,
			"Invalid 'model': %s does not support image variations. Use dall-e-2 or a local model.", r.Family)
	}
	er.MaxImages = 1
	checks := []func() error{
		func() error { return checkImages(req.Images, er, "a variation") },
		func() error { return checkPrompt("prompt", req.Prompt, r.MaxPromptChars, false) },
		func() error { return checkN(req.N, r) },
		func() error { return checkSize(req.Size, r) },
		func() error { return checkEnum("response_format", req.ResponseFormat, r.ResponseFormats, r.Family) },
		func() error { return checkPrompt("negative_prompt", req.NegativePrompt, r.MaxPromptChars, false) },
		func() error { return checkSeed(req.Seed) },
		func() error { return checkRange("steps", req.Steps, MinSteps, MaxSteps) },
		func() error { return checkGuidance(req.GuidanceScale) },
		func() error { return checkStrength(req.Strength) },
		func() error { return checkLoRAs(req.LoRAs) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkImages counts the images against the family and sdgate's pipeline,
// which starts from one image, and checks their byte sizes.
func checkImages(images []Upload, er EditRules, what string) error {
	param := "image"
	if len(images) > 0 && images[0].Field == FieldImages {
		param = FieldImages // the JSON body's name
	}
	switch n := len(images); {
	case n == 0:
		return fieldErr(param, CodeMissingParameter, "Missing required parameter: '%s'.", param)
	case n > er.MaxImages && er.MaxImages == 1:
		return fieldErr(param, CodeInvalidValue, "Invalid '%s': %s takes one image, but %d were sent.", param, what, n)
	case n > er.MaxImages:
		return fieldErr(param, CodeInvalidValue, "Invalid '%s': at most %d images, but %d were sent.", param, er.MaxImages, n)
	case n > 1:
		return fieldErr(param, CodeInvalidValue,
			"Invalid '%s': sdgate edits one image per request (Stable Diffusion starts from a single image), but %d were sent. This is a deliberate difference from upstream, which composes up to %d.", param, n, MaxEditImages)
	}
	return checkUpload(&images[0], er.MaxImageBytes)
}

// checkUpload checks one file's size; nil (an omitted mask) passes.
func checkUpload(u *Upload, limit int64) error {
	if u == nil {
		return nil
	}
	param := paramOf(u.Field)
	if len(u.Data) == 0 {
		return fieldErr(param, CodeInvalidImage, "Invalid '%s': the file is empty.", param)
	}
	if int64(len(u.Data)) > limit {
		return fieldErr(param, CodeImageTooLarge, "Invalid '%s': the file must be less than %d MB, but it has %d bytes.",
			param, limit>>20, len(u.Data))
	}
	return nil
}

func checkStrength(s *float64) error {
	if s != nil && !(*s > 0 && *s <= 1) {
		return fieldErr("strength", CodeInvalidValue,
			"Invalid 'strength': expected a number greater than 0 and at most 1, but got %v instead.", *s)
	}
	return nil
}
