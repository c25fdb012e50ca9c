package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// loraFolders writes model folders a (two LoRAs, LoRA aliases) and b.
func loraFolders(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, id := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, id), 0o755)
		os.WriteFile(filepath.Join(dir, id, "model_index.json"), []byte(`{}`), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "a", LoRADir, "ink"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", LoRADir, "ghibli.safetensors"), []byte("ghibli weights"), 0o644)
	os.WriteFile(filepath.Join(dir, "a", LoRADir, "ink", "adapter_model.safetensors"), []byte("ink weights"), 0o644)
	os.WriteFile(filepath.Join(dir, "a", LoRADir, "notes.txt"), []byte("not a LoRA"), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "sdgate.json"), []byte(`{"aliases": {
		"dall-e-3": {},
		"studio": {"loras": [{"name": "ghibli", "scale": 0.8}]},
		"inked": {"loras": [{"name": "ink"}]},
		"nowhere": {"loras": [{"name": "missing"}]},
		"b": {"loras": [{"name": "ink"}]}}}`), 0o644)
	return dir
}

func label(loras []AppliedLoRA) string {
	parts := make([]string, len(loras))
	for i, l := range loras {
		parts[i] = fmt.Sprintf("%s@%g", l.Name, l.Scale)
	}
	return strings.Join(parts, ",")
}

func newLoRARegistry(t *testing.T, dir string, calls *[]string, variants bool) *Registry {
	t.Helper()
	open := func(d string) (*fakePipeline, error) { return &fakePipeline{dir: d, log: calls}, nil }
	opts := RegistryOptions{Open: OpenWith(open), Dir: dir, KeepAlive: -1, MaxResident: 1}
	if variants {
		opts.OpenVariant = func(d string, loras []AppliedLoRA) (Pipeline, error) {
			return &fakePipeline{dir: d + "#" + label(loras), log: calls}, nil
		}
	}
	r, err := NewRegistry(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestLoRAAliasesAreModels(t *testing.T) {
	dir := loraFolders(t)
	var calls []string
	r := newLoRARegistry(t, dir, &calls, true)
	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
	}
	if want := []string{"a", "b", "inked", "studio"}; !slices.Equal(ids, want) {
		t.Fatalf("models %v, want %v", ids, want)
	}
	broken := map[string]error{}
	for _, b := range r.Broken() {
		broken[b.ID] = b.Err
	}
	if len(broken) != 2 || !strings.Contains(fmt.Sprint(broken["nowhere"]), `unknown LoRA "missing"`) ||
		!strings.Contains(fmt.Sprint(broken["b"]), "already a model's name") {
		t.Fatalf("broken %v", broken)
	}
	a, _ := r.Resolve("dall-e-3")
	studio, ok := r.Resolve("studio")
	if !ok || a.ID != "a" || studio.Base != "a" || len(studio.Applied) != 1 || studio.Applied[0].Scale != 0.8 {
		t.Fatalf("resolve: %+v %+v", a, studio)
	}
	if len(a.LoRAs) != 2 || !strings.HasPrefix(a.LoRAs["ghibli"].Digest, "sha256:") || a.LoRAs["ink"].Digest == a.LoRAs["ghibli"].Digest {
		t.Fatalf("a's LoRAs %+v", a.LoRAs)
	}
	if inked, _ := r.Resolve("inked"); inked.Applied[0].Scale != 1 {
		t.Errorf("omitted scale: %+v, want 1", inked.Applied)
	}
	if studio.Digest == "" || studio.Digest == a.Digest {
		t.Errorf("studio digest %q, a's %q: a variant keys the cache apart", studio.Digest, a.Digest)
	}
}

func TestRequestLoRAsUseResidentVariants(t *testing.T) {
	dir := loraFolders(t)
	var calls []string
	r := newLoRARegistry(t, dir, &calls, true)
	ctx := context.Background()
	run := func(id string, loras ...spec.LoRA) {
		t.Helper()
		if _, err := r.Generate(ctx, id, spec.Request{LoRAs: loras}); err != nil {
			t.Fatalf("%s %v: %v", id, loras, err)
		}
	}
	run("studio")
	run("a", spec.LoRA{Name: "ghibli", Scale: 0.8}) // the alias's variant, reused
	run("a", spec.LoRA{Name: "ink", Scale: 1})      // a new variant; the resident limit evicts studio
	run("inked")                                    // same LoRAs as the last request: reused
	run("studio", spec.LoRA{Name: "ink", Scale: 0.5})
	want := []string{
		"load a#ghibli@0.8", "generate a#ghibli@0.8", "generate a#ghibli@0.8",
		"close a#ghibli@0.8", "load a#ink@1", "generate a#ink@1", "generate a#ink@1",
		"close a#ink@1", "load a#ghibli@0.8,ink@0.5", "generate a#ghibli@0.8,ink@0.5",
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls\n%v\nwant\n%v", calls, want)
	}
	if st := r.Stats(); st.Resident != 1 || st.Loads != 3 || st.Unloads != 2 {
		t.Errorf("stats %+v", st)
	}
	// Unloaded request variants are forgotten when the next one is made.
	run("a", spec.LoRA{Name: "ghibli", Scale: 0.1})
	r.mu.Lock()
	n := len(r.variants)
	r.mu.Unlock()
	if n > 2 {
		t.Errorf("%d request variants kept, want the unloaded ones pruned", n)
	}
}

func TestRequestLoRAsRefused(t *testing.T) {
	dir := loraFolders(t)
	var calls []string
	r := newLoRARegistry(t, dir, &calls, true)
	ctx := context.Background()
	for _, tc := range []struct {
		id    string
		loras []spec.LoRA
		want  string
	}{
		{"a", []spec.LoRA{{Name: "missing", Scale: 1}}, `unknown LoRA "missing": this model offers "ghibli", "ink"`},
		{"b", []spec.LoRA{{Name: "ink", Scale: 1}}, "none (add files"},
		{"a", []spec.LoRA{{Name: "ink", Scale: 9}}, "outside"},
		{"a", []spec.LoRA{{Name: "ink", Scale: 1}, {Name: "ink", Scale: 1}}, "named twice"},
		{"studio", []spec.LoRA{{Name: "ink"}, {Name: "a1"}, {Name: "a2"}, {Name: "a3"}}, "at most"},
	} {
		_, err := r.Generate(ctx, tc.id, spec.Request{LoRAs: tc.loras})
		var pe *spec.ParamError
		if !errors.As(err, &pe) || pe.Param != "loras" || !strings.Contains(pe.Message, tc.want) {
			t.Errorf("%s %v: %v, want a loras error saying %q", tc.id, tc.loras, err, tc.want)
		}
	}
	if len(calls) != 0 {
		t.Errorf("refused requests reached the pipelines: %v", calls)
	}

	var calls2 []string
	plain := newLoRARegistry(t, dir, &calls2, false)
	if _, err := plain.Generate(ctx, "a", spec.Request{LoRAs: []spec.LoRA{{Name: "ink", Scale: 1}}}); err == nil || !strings.Contains(err.Error(), "does not merge LoRAs") {
		t.Errorf("without a variant opener: %v", err)
	}
	if _, ok := plain.Resolve("studio"); ok {
		t.Error("a LoRA alias is served without a variant opener")
	}
}

// TestRescanChangedLoRA: a LoRA file that changes gets a new digest, and
// the aliases and variants that merged the old one are dropped.
func TestRescanChangedLoRA(t *testing.T) {
	dir := loraFolders(t)
	var calls []string
	r := newLoRARegistry(t, dir, &calls, true)
	ctx := context.Background()
	before, _ := r.Resolve("studio")
	if _, err := r.Generate(ctx, "studio", spec.Request{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if same, _ := r.Resolve("studio"); same.Digest != before.Digest || !r.Loaded("studio") {
		t.Fatalf("unchanged rescan: digest %q -> %q, loaded %v", before.Digest, same.Digest, r.Loaded("studio"))
	}
	path := filepath.Join(dir, "a", LoRADir, "ghibli.safetensors")
	os.WriteFile(path, []byte("retrained ghibli"), 0o644)
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	after, _ := r.Resolve("studio")
	if after.Digest == before.Digest || r.Loaded("studio") {
		t.Errorf("changed LoRA: digest %q -> %q, old variant loaded %v", before.Digest, after.Digest, r.Loaded("studio"))
	}
	if !slices.Contains(calls, "close a#ghibli@0.8") {
		t.Errorf("old variant not closed: %v", calls)
	}
}

func TestFolderAliasesForms(t *testing.T) {
	for _, tc := range []struct {
		js    string
		plain []string
		lora  int
		bad   bool
	}{
		{js: `["dall-e-3", "x"]`, plain: []string{"dall-e-3", "x"}},
		{js: `{"x": {}, "y": null, "z": {"loras": [{"name": "s", "scale": -0.5}]}}`, plain: []string{"x", "y"}, lora: 1},
		{js: `"x"`, bad: true},
		{js: `{"x": {"loras": "s"}}`, bad: true},
	} {
		var a folderAliases
		err := a.UnmarshalJSON([]byte(tc.js))
		if tc.bad != (err != nil) || !slices.Equal(a.plain, tc.plain) || len(a.lora) != tc.lora {
			t.Errorf("%s: %+v %v", tc.js, a, err)
		}
	}
}
