package compat

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sdgate/sdgate/sd/spec"
)

// Family is a set of validation rules. Each OpenAI model name has its
// upstream family; a local model id (not an alias) gets FamilyLocal.
type Family string

// The families.
const (
	FamilyDallE2   Family = "dall-e-2"
	FamilyDallE3   Family = "dall-e-3"
	FamilyGPTImage Family = "gpt-image-1"
	// gpt-image-1-mini, gpt-image-1.5 and chatgpt-image-latest follow
	// gpt-image-1's rules under their own names (so messages name them).
	FamilyGPTImageMini Family = "gpt-image-1-mini"
	FamilyGPTImage15   Family = "gpt-image-1.5"
	FamilyChatGPTImage Family = "chatgpt-image-latest"
	// FamilyGPTImage2 is gpt-image-1's family with free-form sizes
	// (GPTImage2Sizes) besides the fixed ones.
	FamilyGPTImage2 Family = "gpt-image-2"
	// FamilyLocal is gpt-image-1's family made permissive: every quality and
	// style name, both response formats, and any WxH multiple of 8 generated
	// exactly at that size (the pipeline checks the model's limits).
	FamilyLocal Family = "local"
)

// Rules are one family's limits. A nil list means the field is not part of
// that family and sending it is an error.
type Rules struct {
	Family         Family
	MaxPromptChars int
	MaxN           int
	Sizes          []string      // fixed sizes, "auto" included where allowed
	AnySize        bool          // also any WxH, both sides multiples of 8
	FreeSize       *FreeSizeRule // also any WxH within these bounds (nil: none)
	DefaultSize    string

	Qualities      []string
	DefaultQuality string
	Styles         []string
	DefaultStyle   string

	ResponseFormats       []string
	DefaultResponseFormat string

	OutputFormats []string
	Compression   bool // output_compression accepted (with jpeg / webp)
	Backgrounds   []string
	Moderations   []string
	Streaming     bool // stream and partial_images accepted
	Usage         bool // responses carry a usage block
}

// MaxPartialImages is the upstream bound of partial_images.
const MaxPartialImages = 3

// MaxSeed, MinSteps and MaxSteps are the pipeline's own limits (sd/spec).
const (
	MaxSeed  = spec.MaxSeed
	MinSteps = spec.MinSteps
	MaxSteps = spec.MaxSteps
)

var gptFormats = []string{OutputFormatPNG, OutputFormatJPEG, OutputFormatWEBP}

// FreeSizeRule bounds a free-form WxH: each side a multiple of Multiple and
// at most MaxEdge, long side at most MaxAspect times the short one, and
// MinPixels <= W*H <= MaxPixels.
type FreeSizeRule struct {
	Multiple, MaxEdge, MaxAspect int
	MinPixels, MaxPixels         int
}

// GPTImage2Sizes are gpt-image-2's free-form size bounds as upstream
// documents them (docs/openai-compat.md says where each number comes from).
var GPTImage2Sizes = FreeSizeRule{
	Multiple: 16, MaxEdge: 3840, MaxAspect: 3,
	MinPixels: 655_360, MaxPixels: 3840 * 2160,
}

// IsGPTImage reports whether f is one of the GPT image families (every
// OpenAI family but dall-e-2 and dall-e-3).
func IsGPTImage(f Family) bool {
	switch f {
	case FamilyGPTImage, FamilyGPTImageMini, FamilyGPTImage15, FamilyChatGPTImage, FamilyGPTImage2:
		return true
	}
	return false
}

func gptImageRules(f Family) Rules {
	return Rules{
		Family: f, MaxPromptChars: 32000, MaxN: 10,
		Sizes: []string{"1024x1024", "1536x1024", "1024x1536", SizeAuto}, DefaultSize: SizeAuto,
		Qualities:      []string{QualityLow, QualityMedium, QualityHigh, QualityAuto},
		DefaultQuality: QualityAuto,
		// Upstream always answers b64_json; naming it explicitly is harmless.
		ResponseFormats:       []string{ResponseFormatB64JSON},
		DefaultResponseFormat: ResponseFormatB64JSON,
		OutputFormats:         gptFormats, Compression: true,
		Backgrounds: []string{BackgroundTransparent, BackgroundOpaque, BackgroundAuto},
		Moderations: []string{ModerationLow, ModerationAuto},
		Streaming:   true, Usage: true,
	}
}

// RulesFor returns the family's rules; ok is false for an unknown family.
// Every request asks, so they are built once; their slices are shared and
// read-only (append to a slices.Clip of one).
func RulesFor(f Family) (Rules, bool) {
	r, ok := familyRules[f]
	return r, ok
}

var familyRules = func() map[Family]Rules {
	all := map[Family]Rules{}
	for _, f := range []Family{FamilyDallE2, FamilyDallE3, FamilyGPTImage, FamilyGPTImageMini, FamilyGPTImage15,
		FamilyChatGPTImage, FamilyGPTImage2, FamilyLocal} {
		r, ok := buildRules(f)
		if !ok {
			panic("compat: no rules for family " + string(f))
		}
		all[f] = r
	}
	return all
}()

func buildRules(f Family) (Rules, bool) {
	switch f {
	case FamilyDallE2:
		return Rules{
			Family: f, MaxPromptChars: 1000, MaxN: 10,
			Sizes: []string{"256x256", "512x512", "1024x1024"}, DefaultSize: "1024x1024",
			Qualities: []string{QualityStandard}, DefaultQuality: QualityStandard,
			ResponseFormats:       []string{ResponseFormatURL, ResponseFormatB64JSON},
			DefaultResponseFormat: ResponseFormatURL,
		}, true
	case FamilyDallE3:
		return Rules{
			Family: f, MaxPromptChars: 4000, MaxN: 1,
			Sizes: []string{"1024x1024", "1792x1024", "1024x1792"}, DefaultSize: "1024x1024",
			Qualities: []string{QualityStandard, QualityHD}, DefaultQuality: QualityStandard,
			Styles: []string{StyleVivid, StyleNatural}, DefaultStyle: StyleVivid,
			ResponseFormats:       []string{ResponseFormatURL, ResponseFormatB64JSON},
			DefaultResponseFormat: ResponseFormatURL,
		}, true
	case FamilyGPTImage, FamilyGPTImageMini, FamilyGPTImage15, FamilyChatGPTImage:
		return gptImageRules(f), true
	case FamilyGPTImage2:
		r := gptImageRules(f)
		free := GPTImage2Sizes
		r.FreeSize = &free
		return r, true
	case FamilyLocal:
		return Rules{
			Family: f, MaxPromptChars: 32000, MaxN: 10,
			Sizes: []string{SizeAuto}, AnySize: true, DefaultSize: SizeAuto,
			Qualities: []string{QualityLow, QualityMedium, QualityHigh, QualityAuto,
				QualityStandard, QualityHD},
			DefaultQuality:        QualityAuto,
			Styles:                []string{StyleVivid, StyleNatural},
			ResponseFormats:       []string{ResponseFormatURL, ResponseFormatB64JSON},
			DefaultResponseFormat: ResponseFormatB64JSON,
			OutputFormats:         gptFormats, Compression: true,
			Backgrounds: []string{BackgroundTransparent, BackgroundOpaque, BackgroundAuto},
			Moderations: []string{ModerationLow, ModerationAuto},
			Streaming:   true, Usage: true,
		}, true
	}
	return Rules{}, false
}

// DefaultModel is the alias upstream uses when "model" is absent: dall-e-2,
// unless a parameter only gpt-image-1 knows is present.
func DefaultModel(req ImageGenerationRequest) string {
	if req.OutputFormat != "" || req.OutputCompression != nil || req.Background != "" ||
		req.Moderation != "" || req.Stream != nil || req.PartialImages != nil {
		return string(FamilyGPTImage)
	}
	return string(FamilyDallE2)
}

// ValidateGeneration checks req against the family's rules and returns the
// first problem as *Error. It rejects rather than repairs.
func ValidateGeneration(req ImageGenerationRequest, r Rules) error {
	checks := []func() error{
		func() error { return checkPrompt("prompt", req.Prompt, r.MaxPromptChars, true) },
		func() error { return checkN(req.N, r) },
		func() error { return checkSize(req.Size, r) },
		func() error { return checkEnum("quality", req.Quality, r.Qualities, r.Family) },
		func() error { return checkEnum("style", req.Style, r.Styles, r.Family) },
		func() error { return checkEnum("response_format", req.ResponseFormat, r.ResponseFormats, r.Family) },
		func() error { return checkEnum("output_format", req.OutputFormat, r.OutputFormats, r.Family) },
		func() error { return checkCompression(req, r) },
		func() error { return checkEnum("background", req.Background, r.Backgrounds, r.Family) },
		func() error { return checkEnum("moderation", req.Moderation, r.Moderations, r.Family) },
		func() error { return checkStreaming(req, r) },
		func() error { return checkPrompt("negative_prompt", req.NegativePrompt, r.MaxPromptChars, false) },
		func() error { return checkSeed(req.Seed) },
		func() error { return checkRange("steps", req.Steps, MinSteps, MaxSteps) },
		func() error { return checkGuidance(req.GuidanceScale) },
		func() error { return checkLoRAs(req.LoRAs) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func checkPrompt(param, text string, maxChars int, required bool) error {
	if text == "" {
		if required {
			return fieldErr(param, CodeMissingParameter, "Missing required parameter: '%s'.", param)
		}
		return nil
	}
	if !utf8.ValidString(text) {
		return fieldErr(param, CodeInvalidValue, "Invalid '%s': not valid UTF-8.", param)
	}
	if n := utf8.RuneCountInString(text); n > maxChars {
		return fieldErr(param, CodeStringAboveMaxLength,
			"Invalid '%s': string too long. Expected a string with maximum length %d, but got a string with length %d instead.",
			param, maxChars, n)
	}
	return nil
}

func checkN(n *int, r Rules) error {
	if n == nil {
		return nil
	}
	if r.MaxN == 1 && *n != 1 {
		return fieldErr("n", CodeInvalidValue, "Invalid 'n': %s only supports n=1.", r.Family)
	}
	return checkRange("n", n, 1, r.MaxN)
}

func checkRange(param string, v *int, lo, hi int) error {
	switch {
	case v == nil:
		return nil
	case *v < lo:
		return fieldErr(param, CodeIntegerBelowMin,
			"Invalid '%s': integer below minimum value. Expected a value >= %d, but got %d instead.", param, lo, *v)
	case *v > hi:
		return fieldErr(param, CodeIntegerAboveMax,
			"Invalid '%s': integer above maximum value. Expected a value <= %d, but got %d instead.", param, hi, *v)
	}
	return nil
}

func checkSize(size string, r Rules) error {
	if size == "" || slices.Contains(r.Sizes, size) {
		return nil
	}
	if r.AnySize {
		w, h, err := ParseSize(size)
		if err != nil {
			return fieldErr("size", CodeInvalidValue,
				"Invalid 'size': '%s'. Expected 'auto' or WIDTHxHEIGHT with both sides multiples of 8 between 8 and %d.",
				size, MaxSide)
		}
		if w%8 != 0 || h%8 != 0 {
			return fieldErr("size", CodeInvalidValue,
				"Invalid 'size': '%s'. Both sides must be multiples of 8.", size)
		}
		return nil
	}
	if r.FreeSize != nil {
		return checkFreeSize(size, *r.FreeSize)
	}
	return fieldErr("size", CodeInvalidValue, "Invalid 'size': '%s'. Supported values for %s are: %s.",
		size, r.Family, quoteList(r.Sizes))
}

// checkFreeSize applies a FreeSizeRule, naming the first bound broken.
func checkFreeSize(size string, fr FreeSizeRule) error {
	w, h, err := ParseSize(size)
	if err != nil {
		return fieldErr("size", CodeInvalidValue,
			"Invalid 'size': '%s'. Expected 'auto' or WIDTHxHEIGHT with both sides multiples of %d.", size, fr.Multiple)
	}
	long, short := max(w, h), min(w, h)
	switch {
	case w%fr.Multiple != 0 || h%fr.Multiple != 0:
		return fieldErr("size", CodeInvalidValue,
			"Invalid 'size': '%s'. Both sides must be multiples of %d.", size, fr.Multiple)
	case long > fr.MaxEdge:
		return fieldErr("size", CodeInvalidValue,
			"Invalid 'size': '%s'. The longest side must be at most %d pixels.", size, fr.MaxEdge)
	case long > fr.MaxAspect*short:
		return fieldErr("size", CodeInvalidValue,
			"Invalid 'size': '%s'. The aspect ratio (long side to short side) must be at most %d:1.", size, fr.MaxAspect)
	case w*h < fr.MinPixels || w*h > fr.MaxPixels:
		return fieldErr("size", CodeInvalidValue,
			"Invalid 'size': '%s'. The total pixel count must be between %d and %d, but got %d.",
			size, fr.MinPixels, fr.MaxPixels, w*h)
	}
	return nil
}

// checkEnum accepts "" (omitted) and the listed values; a field the family
// does not have at all is unsupported_parameter.
func checkEnum(param, value string, allowed []string, f Family) error {
	if value == "" || slices.Contains(allowed, value) {
		return nil
	}
	if allowed == nil {
		return unsupported(param, f)
	}
	return fieldErr(param, CodeInvalidValue, "Invalid value for '%s': '%s'. Supported values are: %s.",
		param, value, quoteList(allowed))
}

func unsupported(param string, f Family) error {
	return fieldErr(param, CodeUnsupportedParameter,
		"Unsupported parameter: '%s' is not supported with model %s.", param, f)
}

func checkCompression(req ImageGenerationRequest, r Rules) error {
	if req.OutputCompression == nil {
		return nil
	}
	if !r.Compression {
		return unsupported("output_compression", r.Family)
	}
	if req.OutputFormat != OutputFormatJPEG && req.OutputFormat != OutputFormatWEBP {
		return fieldErr("output_compression", CodeInvalidValue,
			"Invalid 'output_compression': only supported with output_format 'jpeg' or 'webp'.")
	}
	return checkRange("output_compression", req.OutputCompression, 0, 100)
}

func checkStreaming(req ImageGenerationRequest, r Rules) error {
	if req.Stream != nil && !r.Streaming {
		return unsupported("stream", r.Family)
	}
	if req.PartialImages == nil {
		return nil
	}
	if !r.Streaming {
		return unsupported("partial_images", r.Family)
	}
	return checkRange("partial_images", req.PartialImages, 0, MaxPartialImages)
}

func checkSeed(seed *uint64) error {
	if seed != nil && *seed > MaxSeed {
		return fieldErr("seed", CodeIntegerAboveMax,
			"Invalid 'seed': integer above maximum value. Expected a value <= %d, but got %d instead.", uint64(MaxSeed), *seed)
	}
	return nil
}

// checkGuidance only refuses what no model could use; the pipeline checks
// the model's own range.
func checkGuidance(g *float64) error {
	if g != nil && (math.IsNaN(*g) || *g < 0) {
		return fieldErr("guidance_scale", CodeInvalidValue,
			"Invalid 'guidance_scale': expected a number >= 0, but got %v instead.", *g)
	}
	return nil
}

func quoteList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("'%s'", v)
	}
	return strings.Join(quoted, ", ")
}
