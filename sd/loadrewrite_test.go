package sd_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/spec"
)

// TestLoadRewrite: Rewrite sees the text encoders' and the UNet's graphs
// (the timestep-rewritten UNet variant included) before their sessions
// exist, and its error fails the load with nothing left loaded.
func TestLoadRewrite(t *testing.T) {
	rt := runtimeForTest(t)
	for _, opts := range []synth.Options{{}, {FP16: true, Timestep: synth.TimestepFloatScalar}, {Preset: "sdxl-tiny"}} {
		dir := writeModel(t, opts)
		var seen []string
		p, err := rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: func(network, path string, model []byte) ([]byte, error) {
			seen = append(seen, network)
			return model, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Load(context.Background()); err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		want := []string{"text_encoder", "unet"}
		if opts.Preset == "sdxl-tiny" { // both text encoders, first to last, then the UNet
			want = []string{"text_encoder", "text_encoder_2", "unet"}
		}
		if !slices.Equal(seen, want) {
			t.Errorf("%+v: rewrote %v", opts, seen)
		}
		if _, err := p.Generate(context.Background(), sd.Request{Prompt: "p", Steps: 1, Seed: 1, HasSeed: true}); err != nil {
			t.Errorf("%+v: generate: %v", opts, err)
		}
		p.Close()
	}
	boom := errors.New("boom")
	p, err := rt.OpenPipelineWith(writeModel(t, synth.Options{}), sd.LoadOptions{Rewrite: func(network, _ string, model []byte) ([]byte, error) {
		if network == "unet" {
			return nil, boom
		}
		return model, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Load(context.Background()); !errors.Is(err, boom) || p.Loaded() {
		t.Errorf("failing rewrite: %v, loaded %v", err, p.Loaded())
	}
	var pe *sd.ParamError
	if err := p.Validate(sd.Request{Prompt: "p", LoRAs: []spec.LoRA{{Name: "x", Scale: 1}}}); !errors.As(err, &pe) || pe.Param != "loras" {
		t.Errorf("a request carrying LoRAs to a pipeline: %v, want a loras error", err)
	}
}
