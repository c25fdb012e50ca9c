package server

import (
	"context"
	"image"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/sd/spec"
)

// TestLoRAsOnEditsAndVariations: edits and variations take loras in both
// multipart forms; it reaches the pipeline, keys the cache by each LoRA's
// digest and scale (both forms of one list share a key), lands in the
// usage record, and is refused as generations refuse it.
func TestLoRAsOnEditsAndVariations(t *testing.T) {
	c := memoryCache(t)
	f := loraFake()
	f.models[0].CanEncode = true
	ts, _, gate := gatedServer(t, f, func(o *Options) { o.Cache = c })
	key := newKey(t, gate, auth.KeySpec{Name: "lora"})
	pic := encodeTo(t, "png", testPicture(32, 32, image.Rectangle{}))
	post := func(path string, parts ...formPart) rawResponse {
		t.Helper()
		all := append([]formPart{filePart("image", pic), textPart("model", "sd-tiny"), textPart("seed", "7"), textPart("response_format", "b64_json")}, parts...)
		if path == "/v1/images/edits" {
			all = append(all, textPart("prompt", "a hat"))
		}
		body, ct := multipartBody(t, all...)
		return do(t, ts.Client(), http.MethodPost, ts.URL+path, ct, string(body), "Authorization", "Bearer "+key)
	}
	jsonForm := []formPart{textPart("loras", `[{"name":"style","scale":0.5},{"name":"ink"}]`)}
	brackets := []formPart{textPart("loras[][name]", "style"), textPart("loras[][scale]", "0.5"), textPart("loras[][name]", "ink")}
	indexed := []formPart{textPart("loras[0][name]", "style"), textPart("loras[0][scale]", "0.5"), textPart("loras[1][name]", "ink")}
	sent := []spec.LoRA{{Name: "style", Scale: 0.5}, {Name: "ink", Scale: 1}}
	for _, path := range []string{"/v1/images/edits", "/v1/images/variations"} {
		steps := []struct {
			name  string
			parts []formPart
			cache string
			sent  []spec.LoRA
		}{
			{"no LoRA", nil, "MISS", nil},
			{"json field", jsonForm, "MISS", sent},
			{"bracketed fields", brackets, "HIT", nil},
			{"indexed fields", indexed, "HIT", nil},
			{"another scale", []formPart{textPart("loras[][name]", "style"), textPart("loras[][scale]", "0.25"), textPart("loras[][name]", "ink")},
				"MISS", []spec.LoRA{{Name: "style", Scale: 0.25}, {Name: "ink", Scale: 1}}},
		}
		for _, s := range steps {
			r := post(path, s.parts...)
			if r.status != http.StatusOK || r.header.Get("X-Cache") != s.cache {
				t.Fatalf("%s %s: %d X-Cache %q, want %s: %s", path, s.name, r.status, r.header.Get("X-Cache"), s.cache, r.body)
			}
			if s.sent != nil && !slices.Equal(f.lastRequest().LoRAs, s.sent) {
				t.Errorf("%s %s: pipeline got %+v, want %+v", path, s.name, f.lastRequest().LoRAs, s.sent)
			}
		}
		recs, err := gate.RecentUsage(context.Background(), nil, "", 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("usage: %v %v", recs, err)
		}
		if in := strings.Join(recs[0].Inputs, ","); !strings.HasSuffix(in, ",lora:sha256:aa@0.25,lora:sha256:bb@1") {
			t.Errorf("%s usage inputs %q: want the image digest, then each LoRA's digest@scale", path, in)
		}
		for _, bad := range [][]formPart{
			{textPart("loras", `[{"name":"missing"}]`)},
			{textPart("loras[][name]", "missing")},
			{textPart("loras", "style")},
			{textPart("loras", `[{"name":"style","scale":9}]`)},
			{textPart("loras[][name]", "style"), textPart("loras[][name]", "style")},
			{textPart("loras[][name]", "style"), textPart("loras[][weight]", "1")},
			{textPart("loras", `[{"name":"style"}]`), textPart("loras[][name]", "ink")},
		} {
			r := post(path, bad...)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %v: status %d, want 400: %s", path, bad, r.status, r.body)
				continue
			}
			if e := envelope(t, r); e.Param == nil || *e.Param != "loras" {
				t.Errorf("%s %v: param %v, want loras: %s", path, bad, e.Param, r.body)
			}
		}
	}
}

// memoryCache is a 64 MiB in-memory image cache.
func memoryCache(t *testing.T) *cache.Cache {
	t.Helper()
	mem, err := cache.NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(mem, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
