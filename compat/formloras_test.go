package compat

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFormLoRAs: edits and variations take loras as a JSON array field,
// as loras[][name]/loras[][scale] pairs (how the OpenAI SDKs encode an
// array of objects) and as indexed loras[N][...] fields, all alike.
func TestFormLoRAs(t *testing.T) {
	want := []LoRA{{Name: "style", Scale: ptr(0.75)}, {Name: "ink"}}
	forms := map[string][]part{
		"json":        {text("loras", ` [{"name": "style", "scale": 0.75}, {"name": "ink"}] `)},
		"brackets":    {text("loras[][name]", "style"), text("loras[][scale]", "0.75"), text("loras[][name]", "ink")},
		"scale first": {text("loras[][scale]", "0.75"), text("loras[][name]", "style"), text("loras[][name]", "ink")},
		"indexed":     {text("loras[1][name]", "ink"), text("loras[0][scale]", "0.75"), text("loras[0][name]", "style")},
	}
	for name, lp := range forms {
		body := formBody(t, append([]part{file("image", "IMG"), text("prompt", "p")}, lp...)...)
		edit, err := ReadImageEditRequest(bytes.NewReader(body), testBoundary)
		if err != nil {
			t.Fatalf("%s: edit: %v", name, err)
		}
		if diff := cmp.Diff(want, edit.LoRAs); diff != "" {
			t.Errorf("%s: edit loras (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(want, edit.Generation().LoRAs); diff != "" {
			t.Errorf("%s: the edit's generation lost its loras:\n%s", name, diff)
		}
		body = formBody(t, append([]part{file("image", "IMG")}, lp...)...)
		v, err := ReadImageVariationRequest(bytes.NewReader(body), testBoundary)
		if err != nil {
			t.Fatalf("%s: variation: %v", name, err)
		}
		if diff := cmp.Diff(want, v.Generation().LoRAs); diff != "" {
			t.Errorf("%s: variation loras (-want +got):\n%s", name, diff)
		}
	}
	body := formBody(t, file("image", "IMG"), text("loras", ""))
	if edit, err := ReadImageEditRequest(bytes.NewReader(body), testBoundary); err != nil || edit.LoRAs != nil {
		t.Errorf("empty loras field: %+v %v, want omitted", edit.LoRAs, err)
	}
}

func TestFormLoRAsRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		parts []part
		code  string
	}{
		"not json":       {[]part{text("loras", "style")}, CodeInvalidType},
		"not an array":   {[]part{text("loras", `{"name": "style"}`)}, CodeInvalidType},
		"unknown key":    {[]part{text("loras", `[{"name": "style", "weight": 1}]`)}, CodeUnknownParameter},
		"bracket key":    {[]part{text("loras[][weight]", "1")}, CodeUnknownParameter},
		"both forms":     {[]part{text("loras", `[{"name": "a"}]`), text("loras[][name]", "b")}, CodeInvalidValue},
		"mixed brackets": {[]part{text("loras[][name]", "a"), text("loras[1][name]", "b")}, CodeInvalidValue},
		"gap":            {[]part{text("loras[0][name]", "a"), text("loras[2][name]", "b")}, CodeInvalidValue},
		"index twice":    {[]part{text("loras[0][name]", "a"), text("loras[0][name]", "b")}, CodeInvalidValue},
		"huge index":     {[]part{text("loras[99999999999][name]", "a")}, CodeInvalidValue},
		"signed index":   {[]part{text("loras[+1][name]", "a")}, CodeUnknownParameter},
		"bad scale":      {[]part{text("loras[][name]", "a"), text("loras[][scale]", "strong")}, CodeInvalidType},
		"too many":       {[]part{text("loras", `[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"},{"name":"e"}]`)}, CodeInvalidValue},
		"too many pairs": {repeatLoRA(5), CodeInvalidValue},
		"index too high": {[]part{text("loras[4][name]", "a")}, CodeInvalidValue},
	} {
		body := formBody(t, append([]part{file("image", "IMG")}, tc.parts...)...)
		_, err := ReadImageEditRequest(bytes.NewReader(body), testBoundary)
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || (e.Param != "loras" && tc.code != CodeUnknownParameter) {
			t.Errorf("%s: %v, want a %s error", name, err, tc.code)
		}
	}
	// The pipeline's limits apply as they do to generations.
	edit := ImageEditRequest{Images: []Upload{{Field: "image", Data: []byte("x")}}, Prompt: "p", LoRAs: []LoRA{{Name: "a"}, {Name: "a"}}}
	local, _ := RulesFor(FamilyLocal)
	if err := ValidateEdit(edit, local); paramOfErr(err) != "loras" {
		t.Errorf("edit naming a LoRA twice: %v", err)
	}
	v := ImageVariationRequest{Images: []Upload{{Field: "image", Data: []byte("x")}}, LoRAs: []LoRA{{Name: "a", Scale: ptr(1e9)}}}
	if err := ValidateVariation(v, local); paramOfErr(err) != "loras" {
		t.Errorf("variation with an out-of-range scale: %v", err)
	}
}

func repeatLoRA(n int) []part {
	var out []part
	for range n {
		out = append(out, text("loras[][name]", "a"))
	}
	return out
}

// FuzzFormLoRAs: any bracketed field list decodes or is an *Error.
func FuzzFormLoRAs(f *testing.F) {
	f.Add("loras[][name]", "a", "loras[][scale]", "0.5")
	f.Add("loras[0][name]", "a", "loras[1][scale]", "x")
	f.Add("loras[", "", "loras[]]", "")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		var dst []LoRA
		fields := []formField{{n1, v1}, {n2, v2}}
		for _, fl := range fields {
			if !isLoRAField(fl.name) {
				return
			}
		}
		err := bracketLoRAs(fields, false, &dst)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("%v: not an *Error", err)
		}
		if err == nil && len(dst) == 0 {
			t.Fatal("no error and no LoRAs")
		}
	})
}
