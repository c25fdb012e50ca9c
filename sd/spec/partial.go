package spec

import "time"

// MaxPartialImages bounds Request.PartialImages (OpenAI's partial_images).
const MaxPartialImages = 3

// Partial is one preview of a request in progress: the VAE decode of the
// clean image the scheduler predicts after Step of Total denoising steps.
// Only the request's first image is previewed, to bound the cost. Partial
// callbacks run on the GPU worker between two steps: they must hand the
// image off and return at once.
type Partial struct {
	Index       int // 0-based, as OpenAI's partial_image_index
	Step, Total int
	Image       Image
	Cost        time.Duration // predicting x0, decoding and converting it
}

// PartialSteps are the step counts (1..total-1, ascending, distinct) after
// which n previews are taken: evenly spaced, never the last step (the
// final image is that one). Fewer come back when total is too small.
func PartialSteps(n, total int) []int {
	var at []int
	for k := 1; k <= n; k++ {
		s := k * total / (n + 1)
		if s >= 1 && s < total && (len(at) == 0 || at[len(at)-1] != s) {
			at = append(at, s)
		}
	}
	return at
}
