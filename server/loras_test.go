package server

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

func loraFake() *fakeGenerator {
	f := newFakeGenerator()
	f.models[0].LoRAs = map[string]models.LoRAFile{
		"style": {Name: "style", Digest: "sha256:aa"},
		"ink":   {Name: "ink", Digest: "sha256:bb"},
	}
	return f
}

// TestLoRAsRequestField: loras reaches the pipeline in order, with scale 1
// when omitted, and keys the cache by each LoRA's digest and scale.
func TestLoRAsRequestField(t *testing.T) {
	c := memoryCache(t)
	f := loraFake()
	ts := startServer(t, f, func(o *Options) { o.Cache = c })
	body := func(loras string) string {
		return `{"prompt":"p","model":"sd-tiny","seed":7,"response_format":"b64_json"` + loras + `}`
	}
	steps := []struct {
		name, loras, want string
		sent              []spec.LoRA
	}{
		{"no LoRA", "", "MISS", nil},
		{"a LoRA", `,"loras":[{"name":"style","scale":0.5}]`, "MISS", []spec.LoRA{{Name: "style", Scale: 0.5}}},
		{"the same again", `,"loras":[{"name":"style","scale":0.5}]`, "HIT", nil},
		{"another scale", `,"loras":[{"name":"style","scale":0.6}]`, "MISS", []spec.LoRA{{Name: "style", Scale: 0.6}}},
		{"scale omitted", `,"loras":[{"name":"ink"}]`, "MISS", []spec.LoRA{{Name: "ink", Scale: 1}}},
		{"two, stacked", `,"loras":[{"name":"ink"},{"name":"style","scale":0.5}]`, "MISS",
			[]spec.LoRA{{Name: "ink", Scale: 1}, {Name: "style", Scale: 0.5}}},
		{"the other order", `,"loras":[{"name":"style","scale":0.5},{"name":"ink"}]`, "MISS", nil},
		{"empty list is none", `,"loras":[]`, "HIT", nil},
	}
	for _, s := range steps {
		r := postJSON(t, ts.Client(), ts.URL, body(s.loras))
		if r.status != http.StatusOK || r.header.Get("X-Cache") != s.want {
			t.Fatalf("%s: %d X-Cache %q, want %s: %s", s.name, r.status, r.header.Get("X-Cache"), s.want, r.body)
		}
		if s.sent != nil && !slices.Equal(f.lastRequest().LoRAs, s.sent) {
			t.Errorf("%s: pipeline got %+v, want %+v", s.name, f.lastRequest().LoRAs, s.sent)
		}
	}
	// The same name with other contents (a replaced file) keys apart.
	f.models[0].LoRAs = map[string]models.LoRAFile{"style": {Name: "style", Digest: "sha256:cc"}}
	if r := postJSON(t, ts.Client(), ts.URL, body(steps[1].loras)); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("new LoRA digest: X-Cache %q, want MISS", r.header.Get("X-Cache"))
	}
}

func TestLoRAsRefused(t *testing.T) {
	ts := startServer(t, loraFake())
	for _, loras := range []string{
		`[{"name":"missing"}]`,
		`"style"`,
		`[{"name":"style","weight":1}]`,
		`[{"name":7}]`,
		`["style"]`,
		`[{"name":"style","scale":9}]`,
		`[{"scale":1}]`,
		`[{"name":"style"},{"name":"style"}]`,
		`[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"},{"name":"e"}]`,
	} {
		r := postJSON(t, ts.Client(), ts.URL, fmt.Sprintf(`{"prompt":"p","model":"sd-tiny","loras":%s}`, loras))
		if r.status != http.StatusBadRequest {
			t.Errorf("loras %s: status %d, want 400: %s", loras, r.status, r.body)
			continue
		}
		if e := envelope(t, r); e.Param == nil || *e.Param != "loras" {
			t.Errorf("loras %s: param %v, want loras: %s", loras, e.Param, r.body)
		}
	}
	// A model without LoRAs says so.
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"p","model":"sd-turbo","loras":[{"name":"style"}]}`)
	if r.status != http.StatusBadRequest {
		t.Errorf("model without LoRAs: %d %s", r.status, r.body)
	}
}

func TestLoRARefs(t *testing.T) {
	info := loraFake().models[0]
	got := loraRefs(info, []spec.LoRA{{Name: "ink", Scale: 1}, {Name: "style", Scale: -0.25}})
	if want := []string{"lora:sha256:bb@1", "lora:sha256:aa@-0.25"}; !slices.Equal(got, want) {
		t.Errorf("refs %v, want %v", got, want)
	}
	if loraRefs(info, nil) != nil {
		t.Error("no LoRAs, some refs")
	}
}
