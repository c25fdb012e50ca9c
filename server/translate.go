package server

import (
	"math"
	"time"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// GenerationPlan is a validated generations request, split into what the
// pipeline runs (SD) and what the client receives.
type GenerationPlan struct {
	SD spec.Request

	Width, Height  int    // the size the client receives
	ResponseFormat string // url or b64_json
	OutputFormat   string // png, jpeg or webp
	Compression    int    // jpeg / webp quality, 0..100
	Quality        string // echoed quality: low, medium, high (GPT-like families)
	Background     string // echoed background: opaque, or transparent (edits with a mask)

	RevisedPrompt bool // dall-e-3 answers revised_prompt
	ExplicitSeed  bool // the client chose the seed: the result is deterministic (cacheable)
	Usage         bool // GPT-like families answer usage and echo fields
	Stream        bool
	Transparent   bool // kept pixels keep the input's alpha (see transparentEdit)
	PartialImages int  // stream only: previews asked for (0..3)

	// Edits and variations: the input image's tokens in usage, and the
	// pixels an edit keeps, restored at the delivered size (see finish).
	ImageTokens int
	Keep        *keptPixels
}

// nativeFallback is the generation size of a model that reports none.
const nativeFallback = 512

// FromGenerationRequest maps a validated request for the target model t to a plan.
// seed is used when the request names none, so every image's seed is known
// and fits the JSON-safe range.
func FromGenerationRequest(req compat.ImageGenerationRequest, t Target, seed uint64) (GenerationPlan, error) {
	plan, err := basePlan(req, t, seed)
	if err != nil {
		return GenerationPlan{}, err
	}
	if err := refuseTransparent(req.Background, "generations"); err != nil {
		return GenerationPlan{}, err
	}
	// Size: "auto" is upstream's 1024x1024 for the OpenAI families and the
	// native size for local models. Aliases generate at the native pixel
	// count in the asked aspect and resize; local models generate exactly.
	nativeW, nativeH := nativeSize(t.Info)
	w, h, auto, err := askedSize(req.Size, t.Rules)
	if err != nil {
		return GenerationPlan{}, err
	}
	if auto {
		if w, h, auto = autoSize(t.Rules.Family, 0, 0); auto {
			plan.setSize(nativeW, nativeH, nativeW, nativeH)
			return plan, nil
		}
	}
	if err := t.Limits.check(w, h, plan.SD.N, t.Rules.AnySize); err != nil {
		return GenerationPlan{}, err
	}
	genW, genH := w, h
	if !t.Rules.AnySize {
		genW, genH = targetSize(w, h, t.Info)
	}
	plan.setSize(w, h, genW, genH)
	return plan, nil
}

// basePlan maps everything of a request but its size: formats, quality and
// steps, style and guidance, n, seed and prompts. Edits and variations
// share it with generations.
func basePlan(req compat.ImageGenerationRequest, t Target, seed uint64) (GenerationPlan, error) {
	r := t.Rules
	plan := GenerationPlan{
		ResponseFormat: or(req.ResponseFormat, r.DefaultResponseFormat),
		OutputFormat:   or(req.OutputFormat, compat.OutputFormatPNG),
		Compression:    100,
		Background:     compat.BackgroundOpaque,
		RevisedPrompt:  r.Family == compat.FamilyDallE3,
		Usage:          r.Usage,
		Stream:         req.Stream != nil && *req.Stream,
	}
	if req.OutputCompression != nil {
		plan.Compression = *req.OutputCompression
	}
	if plan.Stream && req.PartialImages != nil {
		plan.PartialImages = *req.PartialImages
	}
	if plan.Stream && plan.ResponseFormat != compat.ResponseFormatB64JSON {
		return GenerationPlan{}, &compat.Error{Param: "response_format", Code: compat.CodeInvalidValue,
			Message: "Invalid 'response_format': streamed images are always b64_json."}
	}

	quality := or(req.Quality, r.DefaultQuality)
	plan.Quality = echoQuality(quality)
	steps := qualitySteps(quality, t.Info.DefaultSteps)
	if n, ok := t.Info.QualitySteps[quality]; ok && n > 0 { // the model's sdgate.json says
		steps = n
	}
	if req.Steps != nil {
		steps = *req.Steps
	}

	n := 1
	if req.N != nil {
		n = *req.N
	}
	if req.Seed != nil {
		plan.ExplicitSeed = true
		seed = *req.Seed
	}
	plan.SD = spec.Request{
		Prompt:         req.Prompt,
		NegativePrompt: req.NegativePrompt,
		Steps:          steps,
		Scheduler:      req.Scheduler,
		Seed:           seed,
		HasSeed:        true,
		N:              n,
	}
	if req.GuidanceScale != nil {
		plan.SD.Guidance, plan.SD.HasGuidance = *req.GuidanceScale, true
	} else if g, ok := modelStyleGuidance(or(req.Style, r.DefaultStyle), t.Info); ok {
		plan.SD.Guidance, plan.SD.HasGuidance = g, true
	}
	var err error
	if plan.SD.LoRAs, err = planLoRAs(req, t.Info); err != nil {
		return GenerationPlan{}, err
	}
	return plan, nil
}

// setSize fixes the delivered size and the size the pipeline generates.
func (p *GenerationPlan) setSize(w, h, genW, genH int) {
	p.Width, p.Height = w, h
	p.SD.Width, p.SD.Height = genW, genH
}

// nativeSize is the model's own resolution (nativeFallback when unknown).
func nativeSize(info models.Info) (int, int) {
	if info.NativeWidth <= 0 || info.NativeHeight <= 0 {
		return nativeFallback, nativeFallback
	}
	return info.NativeWidth, info.NativeHeight
}

// askedSize reads a validated size field; auto is true for "auto" (also
// when it is the family's default).
func askedSize(size string, r compat.Rules) (w, h int, auto bool, err error) {
	size = or(size, r.DefaultSize)
	if size == compat.SizeAuto {
		return 0, 0, true, nil
	}
	w, h, err = compat.ParseSize(size)
	if err != nil {
		return 0, 0, false, &compat.Error{Param: "size", Code: compat.CodeInvalidValue, Message: err.Error()}
	}
	return w, h, false, nil
}

// autoSize is compat.AutoSize with "auto" kept (true) where the family
// has no 1024-class answer: local models.
func autoSize(f compat.Family, inW, inH int) (w, h int, auto bool) {
	w, h, ok := compat.AutoSize(f, inW, inH)
	return w, h, !ok
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// qualitySteps: low halves the model's default steps, high and hd double
// them (at most 150), everything else keeps them. 0 leaves the model's own.
func qualitySteps(quality string, defaultSteps int) int {
	if defaultSteps <= 0 {
		return 0
	}
	switch quality {
	case compat.QualityLow:
		return max(1, (defaultSteps+1)/2)
	case compat.QualityHigh, compat.QualityHD:
		return min(compat.MaxSteps, 2*defaultSteps)
	}
	return defaultSteps
}

// echoQuality names a quality the way GPT image responses do.
func echoQuality(quality string) string {
	switch quality {
	case compat.QualityLow:
		return compat.QualityLow
	case compat.QualityHigh, compat.QualityHD:
		return compat.QualityHigh
	}
	return compat.QualityMedium
}

// Style factors on the model's default guidance scale.
const (
	vividGuidanceFactor   = 1.2
	naturalGuidanceFactor = 0.7
)

// styleGuidance: vivid pushes classifier-free guidance up, natural down. A
// model that runs without guidance (default <= 1) keeps running without.
func styleGuidance(style string, defaultGuidance float64) (float64, bool) {
	if defaultGuidance <= 1 {
		return 0, false
	}
	var g float64
	switch style {
	case compat.StyleVivid:
		g = defaultGuidance * vividGuidanceFactor
	case compat.StyleNatural:
		g = max(1, defaultGuidance*naturalGuidanceFactor)
	default:
		return 0, false
	}
	return math.Round(g*100) / 100, true
}

// modelStyleGuidance is the model's own style_guidance from its sdgate.json
// when it names the style, else styleGuidance's factors.
func modelStyleGuidance(style string, info models.Info) (float64, bool) {
	if g, ok := info.StyleGuidance[style]; ok && style != "" {
		return g, true
	}
	return styleGuidance(style, info.DefaultGuidance)
}

// generationSize is the size with about the native pixel count and the
// asked aspect, sides rounded to multiples of 8; the image is then resized
// to the asked size.
func generationSize(w, h, nativeW, nativeH int) (int, int) {
	area := float64(nativeW * nativeH)
	aspect := float64(w) / float64(h)
	gw := roundTo8(math.Sqrt(area * aspect))
	gh := roundTo8(math.Sqrt(area / aspect))
	return gw, gh
}

func roundTo8(v float64) int { return max(8, int(math.Round(v/8))*8) }

// imagePayload is one encoded image on its way out: a URL or base64.
type imagePayload struct {
	URL string
	B64 string
}

// ToImagesResponse builds the answer: payloads in result order, each with
// its seed; revised_prompt for dall-e-3; usage and echoes for GPT-like
// families. textTokens is the CLIP token count of the conditioning text.
func ToImagesResponse(plan GenerationPlan, res spec.Result, payloads []imagePayload, created time.Time, textTokens int) compat.ImagesResponse {
	resp := compat.ImagesResponse{Created: created.Unix(), Data: make([]compat.ImageData, len(payloads))}
	for i, p := range payloads {
		d := compat.ImageData{URL: p.URL, B64JSON: p.B64}
		if i < len(res.Images) {
			d.Seed = res.Images[i].Seed
		}
		if plan.RevisedPrompt {
			d.RevisedPrompt = res.Prompt
		}
		resp.Data[i] = d
	}
	if plan.Usage {
		u := ToUsage(plan, len(payloads), textTokens)
		resp.Usage = &u
		resp.Background = plan.Background
		resp.OutputFormat = plan.OutputFormat
		resp.Quality = plan.Quality
		resp.Size = compat.FormatSize(plan.Width, plan.Height)
	}
	return resp
}

// ToUsage is the usage block of n images: input tokens are the CLIP tokens
// that conditioned them plus the input image's tokens (edits, variations),
// output tokens OpenAI's image-token figure for the delivered size and
// quality (see imageTokens).
func ToUsage(plan GenerationPlan, n, textTokens int) compat.ImageUsage {
	out := n * imageTokens(plan.Width, plan.Height, plan.Quality)
	in := textTokens + plan.ImageTokens
	return compat.ImageUsage{
		InputTokens:        in,
		OutputTokens:       out,
		TotalTokens:        in + out,
		InputTokensDetails: compat.InputTokensDetails{TextTokens: textTokens, ImageTokens: plan.ImageTokens},
		// Every output token is an image token: the pipeline writes no text.
		OutputTokensDetails: &compat.OutputTokensDetails{ImageTokens: out},
	}
}

// imageTokens reproduces GPT image output token counts: the image is cut
// into square patches (16 px at high quality, 32 at medium, 64 at low); the
// count is the patches plus one per patch along the longer side. It gives
// upstream's published 272 / 1056 / 4160 for 1024x1024 low / medium / high
// and 408 / 1584 / 6240 for 1024x1536.
func imageTokens(w, h int, quality string) int {
	patch := 32
	switch quality {
	case compat.QualityLow:
		patch = 64
	case compat.QualityHigh:
		patch = 16
	}
	gw := (w + patch - 1) / patch
	gh := (h + patch - 1) / patch
	return gw*gh + max(gw, gh)
}
