package server

import (
	"github.com/sdgate/sdgate/internal/authtest"

	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
)

// adminServer serves a real registry on opts (OpenAI names resolving to the
// default) behind a gate with one admin key, closed when the test ends.
func adminServer(t *testing.T, opts models.RegistryOptions) (*httptest.Server, *models.Registry, *auth.Gate, string) {
	t.Helper()
	opts.DefaultAliases = AliasNames()
	reg, err := models.NewRegistry(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	gate, _ := authtest.Gate(t, auth.Options{})
	admin, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "a", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, reg, func(o *Options) { o.Gate, o.Admin = gate, reg }), reg, gate, admin
}

func TestAdminModelsListsBrokenAndRescans(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "good"), synth.Options{Preset: "tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "broken", "unet"), 0o755)
	os.WriteFile(filepath.Join(dir, "broken", "model_index.json"), []byte(`{}`), 0o644)
	ts, _, gate, admin := adminServer(t, models.RegistryOptions{Open: realOpener(t), Dir: dir})
	user, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "u"})

	if a := call(t, ts, "GET", "/v1/admin/models", user, ""); a.status != 403 {
		t.Errorf("non-admin: %d", a.status)
	}
	a := call(t, ts, "GET", "/v1/admin/models", admin, "")
	broken, _ := a.body["broken"].([]any)
	data, _ := a.body["data"].([]any)
	if a.status != 200 || len(data) != 1 || len(broken) != 1 {
		t.Fatalf("listing: %d %v", a.status, a.body)
	}
	if g := data[0].(map[string]any); g["family"] != "sd15" || len(g["buckets"].([]any)) != 7 || g["buckets"].([]any)[0] != "64x64" {
		t.Errorf("good entry has family %v buckets %v, want sd15 and 7 from 64x64", g["family"], g["buckets"])
	}
	if b := broken[0].(map[string]any); b["id"] != "broken" || !strings.Contains(b["error"].(string), "broken") {
		t.Errorf("broken entry %v", b)
	}
	// /v1/models omits the broken folder.
	if m := call(t, ts, "GET", "/v1/models/broken", admin, ""); m.status != 404 {
		t.Errorf("broken model is listed: %d", m.status)
	}
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "newer"), synth.Options{Preset: "tiny", Seed: 9}, nil); err != nil {
		t.Fatal(err)
	}
	r := call(t, ts, "POST", "/v1/admin/models/rescan", admin, "")
	if data, _ := r.body["data"].([]any); r.status != 200 || len(data) != 2 {
		t.Errorf("after rescan: %d %v", r.status, r.body)
	}
	if m := call(t, ts, "GET", "/v1/models/newer", admin, ""); m.status != 200 {
		t.Errorf("rescanned model not served: %d", m.status)
	}
}

// Keep-alive unloading is visible in /metrics, and the next request reloads
// (and says what the load cost).
func TestKeepAliveShowsInMetrics(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "tiny"), synth.Options{Preset: "tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	reg, err := models.NewRegistry(models.RegistryOptions{Open: realOpener(t), Dir: dir, KeepAlive: 100 * time.Millisecond, DefaultAliases: AliasNames()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	ts := startServer(t, reg)
	first := call(t, ts, "POST", "/v1/images/generations", "", `{"model":"tiny","prompt":"x","steps":1}`)
	if first.status != 200 || first.header.Get("X-Model-Load-Ms") == "" {
		t.Fatalf("cold request: %d, X-Model-Load-Ms %q", first.status, first.header.Get("X-Model-Load-Ms"))
	}
	metric := func(name string) string {
		resp, err := ts.Client().Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(text), "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric("sdgate_model_unloads_total") != "1" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := metric("sdgate_model_unloads_total"); got != "1" || metric("sdgate_models_resident") != "0" {
		t.Fatalf("after keep-alive: unloads %q, resident %q", got, metric("sdgate_models_resident"))
	}
	again := call(t, ts, "POST", "/v1/images/generations", "", `{"model":"tiny","prompt":"x","steps":1}`)
	if again.status != 200 || again.header.Get("X-Model-Load-Ms") == "" || metric("sdgate_model_loads_total") != "2" {
		t.Errorf("reload: %d, header %q, loads %s", again.status, again.header.Get("X-Model-Load-Ms"), metric("sdgate_model_loads_total"))
	}
}
