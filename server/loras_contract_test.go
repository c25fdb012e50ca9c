package server

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
)

// loraModels writes a tiny model with loras/style.safetensors (a kohya
// LoRA on its attention projections) and a LoRA alias "styled" at 0.75.
func loraModels(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny")
	opts := synth.Options{Preset: "tiny", Seed: 5}
	if _, err := synth.Write(context.Background(), model, opts, io.Discard); err != nil {
		t.Fatal(err)
	}
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	var specs []lora.Spec
	for _, p := range params {
		if (p.Net == "unet" || p.Net == "text_encoder") && (strings.HasSuffix(p.Name, ".to_q.weight") ||
			strings.HasSuffix(p.Name, ".to_v.weight") || strings.HasSuffix(p.Name, ".q_proj.weight")) {
			specs = append(specs, lora.Spec{Net: p.Net, Name: p.Name, Shape: p.Shape})
		}
	}
	l, err := lora.Synthesize(specs, 4, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(model, models.LoRADir), 0o755)
	f, err := os.Create(filepath.Join(model, models.LoRADir, "style.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lora.WriteKohya(f, l, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(model, "sdgate.json")
	var cfg map[string]any
	if data, err := os.ReadFile(cfgPath); err != nil || json.Unmarshal(data, &cfg) != nil {
		t.Fatalf("read %s: %v", cfgPath, err)
	}
	cfg["aliases"] = map[string]any{"styled": map[string]any{"loras": []any{map[string]any{"name": "style", "scale": 0.75}}}}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLoRAContractNodeSDK runs testdata/openai_node_loras.cjs on the real
// pipeline: through the official Node SDK, the loras field changes the
// image and the cache key, and the LoRA alias answers with the same image,
// on generations and on multipart edits and variations.
func TestLoRAContractNodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the real pipeline in -short mode")
	}
	open, openVariant := realOpener(t), realVariantOpener(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official Node SDK contract")
	}
	modules := nodeSDK(t)
	reg, err := models.NewRegistry(models.RegistryOptions{Open: open, OpenVariant: openVariant, Dir: loraModels(t),
		QueueSize: 8, KeepAlive: -1, MaxResident: 2, DefaultAliases: AliasNames()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	if b := reg.Broken(); len(b) > 0 {
		t.Fatalf("broken: %+v", b)
	}
	c := memoryCache(t)
	ts := startServer(t, reg, func(o *Options) { o.Cache = c })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_loras.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SDGATE_BASE_URL="+ts.URL+"/v1", "SDGATE_LOCAL_MODEL=tiny")
	out, err := cmd.CombinedOutput()
	t.Logf("node loras contract:\n%s", out)
	if err != nil {
		t.Fatalf("node loras contract failed: %v", err)
	}
}
