package compat

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestAppendJSONMatchesMarshal: the hand-written encoder writes exactly
// json.Marshal's bytes, for every optional part present or absent and for
// strings that need escaping.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	strs := []string{"", "https://h/v1/files/images/abc.png", "iVBORw0KGgo+/=", `a "quoted" \ prompt`,
		"<b>&amp;</b>", "line\nbreak\ttab\x01", "caf\u00e9 \u2028 \U0001F600", "bad \xff utf8", "\x7f"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[rng.IntN(len(strs))] }
	for i := range 2000 {
		r := ImagesResponse{Created: rng.Int64N(1 << 40), Background: pick(), OutputFormat: pick(), Quality: pick(), Size: pick()}
		switch i % 3 {
		case 0: // nil data marshals as null
		case 1:
			r.Data = []ImageData{}
		default:
			for range 1 + rng.IntN(3) {
				r.Data = append(r.Data, ImageData{URL: pick(), B64JSON: pick(), RevisedPrompt: pick(), Seed: rng.Uint64()})
			}
		}
		if i%2 == 0 {
			r.Usage = &ImageUsage{TotalTokens: rng.IntN(5000), InputTokens: rng.IntN(100), OutputTokens: -rng.IntN(3),
				InputTokensDetails: InputTokensDetails{TextTokens: rng.IntN(77), ImageTokens: rng.IntN(300)}}
			if i%4 == 0 {
				r.Usage.OutputTokensDetails = &OutputTokensDetails{TextTokens: rng.IntN(2), ImageTokens: rng.IntN(4000)}
			}
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
			t.Fatalf("case %d:\n got %s\nwant prefix%s", i, got, want)
		}
	}
}

// TestAppendJSONKnowsEveryField fails when a response type gains a field,
// so the encoder cannot silently drop it.
func TestAppendJSONKnowsEveryField(t *testing.T) {
	for typ, fields := range map[reflect.Type]int{
		reflect.TypeFor[ImagesResponse](): 7, reflect.TypeFor[ImageData](): 4, reflect.TypeFor[ImageUsage](): 5,
		reflect.TypeFor[InputTokensDetails](): 2, reflect.TypeFor[OutputTokensDetails](): 2,
	} {
		if typ.NumField() != fields {
			t.Errorf("%s has %d fields, AppendJSON writes %d: teach it the new ones", typ, typ.NumField(), fields)
		}
	}
}

// FuzzAppendJSONString: any string is quoted as json.Marshal quotes it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"", "<>&", "\u2028", "\xff", "\x00\x1f\x7f", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}
