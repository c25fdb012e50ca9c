package cache

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

// baseParams sets every field to a non-zero value, so each mutation below
// changes exactly one thing that matters.
func baseParams() Params {
	return Params{
		Engine:            "sdgate test cpu fp32",
		ModelID:           "tiny",
		ModelDigest:       "sha256:aaaa",
		Operation:         "generate",
		Prompt:            "a lighthouse at dusk",
		NegativePrompt:    "blurry",
		Seed:              42,
		HasSeed:           true,
		Steps:             20,
		Guidance:          7.5,
		HasGuidance:       true,
		Scheduler:         "euler",
		Width:             512,
		Height:            512,
		OutputWidth:       1024,
		OutputHeight:      1024,
		N:                 2,
		Strength:          0.75,
		ImageDigests:      []string{"sha256:img1", "sha256:img2"},
		MaskDigest:        "sha256:mask",
		OutputFormat:      "png",
		OutputCompression: 100,
		Extra:             map[string]string{"lora": "style-a:0.8"},
	}
}

func TestKeyOfEachFieldChangesKey(t *testing.T) {
	tests := []struct {
		field  string // the Params field the mutation changes
		mutate func(*Params)
	}{
		{"Engine", func(p *Params) { p.Engine = "sdgate test cuda fp16" }},
		{"ModelID", func(p *Params) { p.ModelID = "sd15" }},
		{"ModelDigest", func(p *Params) { p.ModelDigest = "sha256:bbbb" }},
		{"Operation", func(p *Params) { p.Operation = "edit" }},
		{"Prompt", func(p *Params) { p.Prompt = "a lighthouse at dawn" }},
		{"Prompt", func(p *Params) { p.Prompt += " " }},
		{"NegativePrompt", func(p *Params) { p.NegativePrompt = "" }},
		{"Seed", func(p *Params) { p.Seed = 43 }},
		{"Seed", func(p *Params) { p.Seed = 0 }},
		{"HasSeed", func(p *Params) { p.HasSeed = false }},
		{"Steps", func(p *Params) { p.Steps = 21 }},
		{"Guidance", func(p *Params) { p.Guidance = 7.5000001 }},
		{"Guidance", func(p *Params) { p.Guidance = 0 }},
		{"HasGuidance", func(p *Params) { p.HasGuidance = false }},
		{"Scheduler", func(p *Params) { p.Scheduler = "ddim" }},
		{"Width", func(p *Params) { p.Width = 768 }},
		{"Height", func(p *Params) { p.Height = 768 }},
		{"OutputWidth", func(p *Params) { p.OutputWidth = 512 }},
		{"OutputHeight", func(p *Params) { p.OutputHeight = 512 }},
		{"N", func(p *Params) { p.N = 1 }},
		{"Strength", func(p *Params) { p.Strength = 0.5 }},
		{"ImageDigests", func(p *Params) { p.ImageDigests = []string{"sha256:img2", "sha256:img1"} }},
		{"ImageDigests", func(p *Params) { p.ImageDigests = p.ImageDigests[:1] }},
		{"ImageDigests", func(p *Params) { p.ImageDigests = []string{"sha256:img1sha256:img2"} }},
		{"MaskDigest", func(p *Params) { p.MaskDigest = "" }},
		{"OutputFormat", func(p *Params) { p.OutputFormat = "webp" }},
		{"OutputCompression", func(p *Params) { p.OutputCompression = 90 }},
		{"Extra", func(p *Params) { p.Extra = map[string]string{"lora": "style-a:0.9"} }},
		{"Extra", func(p *Params) { p.Extra = map[string]string{"lorastyle-a:0.8": ""} }},
		{"Extra", func(p *Params) { p.Extra = nil }},
		// Length prefixes: moving text between adjacent fields is a change.
		{"Prompt", func(p *Params) { p.Prompt, p.NegativePrompt = "a lighthouse at duskb", "lurry" }},
	}

	// Every field of Params must have a mutation here: a field added to
	// Params but forgotten in KeyOf fails this test.
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.field] = true
	}
	pt := reflect.TypeFor[Params]()
	for i := range pt.NumField() {
		if name := pt.Field(i).Name; !covered[name] {
			t.Errorf("Params.%s has no mutation in this table", name)
		}
	}

	base := KeyOf(baseParams())
	seen := map[Key]string{base: "base"}
	for i, tt := range tests {
		p := baseParams()
		tt.mutate(&p)
		k := KeyOf(p)
		if k == base {
			t.Errorf("mutation %d of %s left the key unchanged", i, tt.field)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("mutation %d of %s collides with %s", i, tt.field, prev)
		}
		seen[k] = tt.field
	}
}

func TestKeyOfSamePixelsSameKey(t *testing.T) {
	insertExtra := func(keys ...string) func(*Params) {
		return func(p *Params) {
			p.Extra = map[string]string{}
			for _, k := range keys {
				p.Extra[k] = k + "!"
			}
		}
	}
	// Each case writes the same request two ways that must share a key.
	tests := []struct {
		name string
		a, b func(*Params)
	}{
		{"unchanged copy", func(*Params) {}, func(*Params) {}},
		{"negative zero strength",
			func(p *Params) { p.Strength = math.Copysign(0, -1) },
			func(p *Params) { p.Strength = 0 }},
		{"negative zero guidance",
			func(p *Params) { p.Guidance = math.Copysign(0, -1) },
			func(p *Params) { p.Guidance = 0 }},
		{"every NaN alike",
			func(p *Params) { p.Strength = math.NaN() },
			func(p *Params) { p.Strength = math.Float64frombits(0x7ff8000000000bad) }},
		{"seed ignored without HasSeed",
			func(p *Params) { p.HasSeed, p.Seed = false, 1 },
			func(p *Params) { p.HasSeed, p.Seed = false, 99 }},
		{"guidance ignored without HasGuidance",
			func(p *Params) { p.HasGuidance, p.Guidance = false, 3 },
			func(p *Params) { p.HasGuidance, p.Guidance = false, 9 }},
		{"empty slices and maps like nil",
			func(p *Params) { p.ImageDigests, p.Extra = []string{}, map[string]string{} },
			func(p *Params) { p.ImageDigests, p.Extra = nil, nil }},
		{"extra insertion order", insertExtra("a", "b", "c", "d", "e"), insertExtra("e", "d", "c", "b", "a")},
		{"separate backing arrays",
			func(*Params) {},
			func(p *Params) { p.ImageDigests = slices.Clone(p.ImageDigests) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := baseParams(), baseParams()
			tt.a(&a)
			tt.b(&b)
			if KeyOf(a) != KeyOf(b) {
				t.Errorf("keys differ:\n%+v\n%+v", a, b)
			}
		})
	}
}

// TestKeyOfGolden pins the encoding: if this fails, the key layout changed
// and keyVersion must be bumped (then update the value here).
func TestKeyOfGolden(t *testing.T) {
	const want = "1a42d7c3e6c2fdc18533526ed25cc07879440f203d376c9c42df0aac346cd7a5" // also computed from the documented layout outside Go
	if got := KeyOf(baseParams()).String(); got != want {
		t.Errorf("KeyOf(baseParams()) = %s, want %s (bump keyVersion when the encoding changes)", got, want)
	}
}

func TestDigest(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Digest([]byte(tt.in)); got != tt.want {
				t.Errorf("Digest(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
