package sd

import (
	"testing"
)

// NetworkOutput is one network's output from a test run.
type NetworkOutput struct {
	Name   string
	Values []float32
	Want   int
}

// NetworkOutputs runs every network of m once on small inputs (batch 1 and
// 2, a 64x64 image) and returns the outputs, for black-box loader tests.
func NetworkOutputs(t testing.TB, m *Model) []NetworkOutput {
	t.Helper()
	const h, w = 8, 8
	te := m.textEncoder
	ids := make([]int32, 2*te.length)
	enc, err := m.tokenizer.EncodePadded("a photo of a cat")
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range enc.IDs {
		ids[i], ids[int(te.length)+i] = int32(id), int32(id)
	}
	hidden := make([]float32, 2*te.length*te.hidden)
	if err := te.encode(ids, 2, hidden); err != nil {
		t.Fatalf("text encoder: %v", err)
	}
	out := []NetworkOutput{{Name: "text_encoder", Values: hidden, Want: int(2 * te.length * te.hidden)}}

	run, err := m.unet.prepare(2, h, w, hidden, te.length, guidanceEmbedding(7.5, m.unet.condDim, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer run.close()
	buf := run.sampleBuffer()
	for i := range buf {
		buf[i] = float32(i%17)/8 - 1
	}
	pred, err := run.predict(981)
	if err != nil {
		t.Fatalf("unet: %v", err)
	}
	out = append(out, NetworkOutput{Name: "unet", Values: append([]float32(nil), pred...), Want: 2 * 4 * h * w})

	pixels := make([]float32, 3*8*h*8*w)
	if err := m.vaeDecoder.decode(pred[:4*h*w], h, w, pixels); err != nil {
		t.Fatalf("vae decoder: %v", err)
	}
	out = append(out, NetworkOutput{Name: "vae_decoder", Values: pixels, Want: 3 * 64 * h * w})
	if m.useEncoder {
		lat, err := m.vaeEncoder.encode(pixels, 8*h, 8*w)
		if err != nil {
			t.Fatalf("vae encoder: %v", err)
		}
		want := 4 * h * w
		if m.vaeEncoder.parameters {
			want *= 2
		}
		out = append(out, NetworkOutput{Name: "vae_encoder", Values: lat, Want: want})
	}
	return out
}

// UNetBench prepares one UNet run of batch latents h x w (latent pixels) and
// returns a function that runs one step, for benchmarks.
func UNetBench(tb testing.TB, m *Model, batch int, h, w int64) (step func() error, done func()) {
	te := m.textEncoder
	hidden := make([]float32, int64(batch)*te.length*te.hidden)
	run, err := m.unet.prepare(batch, h, w, hidden, te.length, guidanceEmbedding(7.5, m.unet.condDim, batch), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return func() error { _, err := run.predict(500); return err }, run.close
}

// XLConditioning is what an SDXL model feeds its UNet for req: the
// encoder_hidden_states, text_embeds and time_ids of the whole batch.
func XLConditioning(m *Model, req Request) (hidden, textEmbeds, timeIDs []float32, err error) {
	j, err := m.resolve(req)
	if err != nil {
		return nil, nil, nil, err
	}
	var clock ortClock
	c, err := m.xlConditioning(j, &clock)
	if err != nil {
		return nil, nil, nil, err
	}
	return c.hidden, c.added.textEmbeds, c.added.timeIDs, nil
}
