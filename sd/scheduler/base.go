package scheduler

import "fmt"

// base holds what every scheduler shares: its name, schedule and the
// bookkeeping that keeps Step calls consecutive and latents one length.
type base struct {
	name      string
	steps     int       // inference steps asked for
	timesteps []float64 // what the UNet sees, one per Step
	last      int       // index of the previous Step; -1 before the first
	calls     int       // Steps taken so far (multistep history depth)
	length    int       // latent length fixed by the first Step
}

func newBase(name string, steps int, timesteps []float64) base {
	return base{name: name, steps: steps, timesteps: timesteps, last: -1}
}

func (b *base) Name() string        { return b.name }
func (b *base) inferenceSteps() int { return b.steps }

func (b *base) Timesteps() []float64 { return append([]float64(nil), b.timesteps...) }

// begin checks a Step call before it touches any state.
func (b *base) begin(i int, modelOutput, sample []float32) error {
	if i < 0 || i >= len(b.timesteps) {
		return fmt.Errorf("%w: %d, want 0..%d", ErrBadStep, i, len(b.timesteps)-1)
	}
	if b.last >= 0 && i != b.last+1 {
		return fmt.Errorf("%w: step %d after step %d", ErrBadStep, i, b.last)
	}
	if len(modelOutput) != len(sample) || len(sample) == 0 {
		return fmt.Errorf("%w: model output %d, sample %d", ErrLengthMismatch, len(modelOutput), len(sample))
	}
	if b.length != 0 && len(sample) != b.length {
		return fmt.Errorf("%w: sample %d, earlier steps %d", ErrLengthMismatch, len(sample), b.length)
	}
	return nil
}

// done records a successful Step.
func (b *base) done(i, length int) {
	b.last = i
	b.calls++
	b.length = length
}

// grow returns buf resized to n, reusing its storage when it is big enough,
// so steps after the first allocate nothing.
func grow(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]float32, n)
}

// draw fills the scheduler's noise buffer from noise.
func draw(buf *[]float32, n int, noise Noise) ([]float32, error) {
	if noise == nil {
		return nil, ErrNoNoise
	}
	*buf = grow(*buf, n)
	noise.Randn(*buf)
	return *buf, nil
}

// copyInto copies src to dst unless they are the same slice.
func copyInto(dst, src []float32) {
	if len(src) > 0 && len(dst) > 0 && &dst[0] == &src[0] {
		return
	}
	copy(dst, src)
}

// addNoiseVP writes α·x0 + σ·noise into dst.
func addNoiseVP(dst, x0, noise []float32, alpha, sigma float64) {
	for j := range x0 {
		dst[j] = float32(alpha*float64(x0[j]) + sigma*float64(noise[j]))
	}
}
