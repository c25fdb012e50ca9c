package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
)

// writeFolderAliases rewrites a folder's sdgate.json and moves its mtime
// forward, so the rescan sees a new folder version even within one tick.
func writeFolderAliases(t *testing.T, dir string, aliases string, at time.Time) {
	t.Helper()
	path := filepath.Join(dir, "sdgate.json")
	if err := os.WriteFile(path, []byte(`{"aliases": [`+aliases+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// A rescan is the one moment names change: aliases added, renamed and
// removed in a folder's sdgate.json, and a removed default folder, are seen
// by /v1/models, generations, /readyz and token counting at once.
func TestRescanRebuildsModelIdentity(t *testing.T) {
	dir := t.TempDir()
	for name, seed := range map[string]uint64{"alpha": 1, "beta": 2} {
		if _, err := synth.Write(context.Background(), filepath.Join(dir, name), synth.Options{Preset: "tiny", Seed: seed}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ts, reg, _, admin := adminServer(t, models.RegistryOptions{Open: realOpener(t), Dir: dir, DefaultModel: "alpha", KeepAlive: -1})

	rescan := func() {
		t.Helper()
		if r := call(t, ts, "POST", "/v1/admin/models/rescan", admin, ""); r.status != 200 {
			t.Fatalf("rescan: %d %v", r.status, r.body)
		}
	}
	listed := func(name string) bool {
		t.Helper()
		return call(t, ts, "GET", "/v1/models/"+name, admin, "").status == 200
	}
	generate := func(model string) (int, string) {
		t.Helper()
		size := "64x64"
		if model == "dall-e-2" {
			size = "256x256"
		}
		r := call(t, ts, "POST", "/v1/images/generations", admin,
			`{"model":"`+model+`","prompt":"a red fox","size":"`+size+`","steps":2,"seed":7}`)
		_, code, msg := errorOf(r)
		return r.status, code + ": " + msg
	}
	if listed("house-style") {
		t.Fatal("house-style is listed before any folder names it")
	}

	// Added: beta's sdgate.json names house-style.
	start := time.Now().Add(time.Minute)
	writeFolderAliases(t, filepath.Join(dir, "beta"), `"house-style"`, start)
	rescan()
	if !listed("house-style") {
		t.Error("added alias is not listed after the rescan")
	}
	if st, body := generate("house-style"); st != 200 {
		t.Errorf("generation through the added alias: %d %s", st, body)
	}

	// Renamed: house-style becomes studio.
	writeFolderAliases(t, filepath.Join(dir, "beta"), `"studio"`, start.Add(time.Minute))
	rescan()
	if listed("house-style") || !listed("studio") {
		t.Errorf("after the rename: house-style listed %v, studio listed %v", listed("house-style"), listed("studio"))
	}
	if st, body := generate("house-style"); st != 404 || !strings.Contains(body, "model_not_found") {
		t.Errorf("the old alias name answers %d %s, want 404 model_not_found", st, body)
	}

	// Removed: no alias left in beta.
	writeFolderAliases(t, filepath.Join(dir, "beta"), ``, start.Add(2*time.Minute))
	rescan()
	if listed("studio") {
		t.Error("removed alias is still listed")
	}

	// The default folder goes: the next model by id stands in, and says so.
	if got := reg.CountTokens("a red fox"); got == 0 {
		t.Fatal("token count 0 while the default is there")
	}
	if err := os.RemoveAll(filepath.Join(dir, "alpha")); err != nil {
		t.Fatal(err)
	}
	rescan()
	ready := call(t, ts, "GET", "/readyz", "", "")
	if ready.status != 200 || ready.body["default_model"] != "beta" || ready.body["configured_default_model"] != "alpha" {
		t.Errorf("readyz after removing the default: %d %v", ready.status, ready.body)
	}
	if w, _ := ready.body["warning"].(string); !strings.Contains(w, `"alpha"`) {
		t.Errorf("readyz warning %q does not name the missing default", w)
	}
	listing := call(t, ts, "GET", "/v1/admin/models", admin, "")
	if listing.body["default_model"] != "beta" || listing.body["configured_default_model"] != "alpha" {
		t.Errorf("admin listing after removing the default: %v", listing.body)
	}
	if got := reg.CountTokens("a red fox"); got == 0 {
		t.Error("token count 0 after the default folder was removed")
	}
	if st, body := generate("dall-e-2"); st != 200 {
		t.Errorf("dall-e-2 after the default folder was removed: %d %s", st, body)
	}
	if st, _ := generate("alpha"); st != 404 {
		t.Errorf("the removed model answers %d, want 404", st)
	}
}
