package spec

// Model is what the pipeline and the API need to know about a model.
type Model struct {
	// Family is FamilySD1, FamilySD2 or FamilySDXL.
	Family                    string
	NativeWidth, NativeHeight int
	// Buckets are the sizes the model generates an OpenAI size at (the
	// nearest in aspect, then resized): Buckets(native size).
	Buckets         []Size
	DefaultSteps    int
	DefaultGuidance float64
	Scheduler       string // the config's own class, e.g. PNDMScheduler
	ScalingFactor   float64
	Inpainting      bool // UNet with 9 input channels
	CanEncode       bool // has a VAE encoder
	FP16            bool // UNet takes float16 latents
	LCM             bool // UNet takes timestep_cond (guidance embedding, no CFG pass)
	MaxTokens       int
}

// SideLimits are the smallest and largest image side a model accepts: from
// an eighth of its native size (one latent pixel at least) to four times
// it. SD degrades well before either end, but inside them it runs.
func (s Model) SideLimits() (lo, hi int) {
	lo = max(8, min(s.NativeWidth, s.NativeHeight)/8/8*8)
	hi = 4 * max(s.NativeWidth, s.NativeHeight)
	return lo, hi
}
