package server

import (
	"testing"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// An alias generates at the folder's nearest native bucket and delivers the
// asked size; a folder without buckets keeps the native pixel count.
func TestTargetSizeBuckets(t *testing.T) {
	xl := models.Info{ID: "xl", Family: spec.FamilySDXL, NativeWidth: 1024, NativeHeight: 1024, Buckets: spec.Buckets(1024, 1024), DefaultSteps: 30}
	sd15 := models.Info{ID: "sd15", Family: spec.FamilySD1, NativeWidth: 512, NativeHeight: 512, Buckets: spec.Buckets(512, 512), DefaultSteps: 25}
	bare := models.Info{ID: "bare", NativeWidth: 512, NativeHeight: 512, DefaultSteps: 25}
	for _, tc := range []struct {
		family     compat.Family
		info       models.Info
		size       string
		genW, genH int
	}{
		{compat.FamilyDallE3, xl, "1024x1024", 1024, 1024},
		{compat.FamilyDallE3, xl, "1792x1024", 1344, 768},
		{compat.FamilyDallE3, xl, "1024x1792", 768, 1344},
		{compat.FamilyGPTImage, xl, "1536x1024", 1216, 832},
		{compat.FamilyGPTImage, xl, "1024x1536", 832, 1216},
		{compat.FamilyDallE2, sd15, "1024x1024", 512, 512},
		{compat.FamilyDallE3, sd15, "1792x1024", 672, 384},
		{compat.FamilyDallE3, bare, "1792x1024", 680, 384},
	} {
		t.Run(tc.info.ID+" "+tc.size, func(t *testing.T) {
			plan, err := FromGenerationRequest(compat.ImageGenerationRequest{Prompt: "p", Size: tc.size}, testTarget(t, string(tc.family), tc.family, tc.info), 1)
			if err != nil {
				t.Fatal(err)
			}
			w, h, _ := compat.ParseSize(tc.size)
			if plan.SD.Width != tc.genW || plan.SD.Height != tc.genH || plan.Width != w || plan.Height != h {
				t.Errorf("generates %dx%d delivers %dx%d; want %dx%d and %s", plan.SD.Width, plan.SD.Height, plan.Width, plan.Height, tc.genW, tc.genH, tc.size)
			}
		})
	}
}

func TestToModelFamily(t *testing.T) {
	m := toModel("dall-e-3", models.Info{ID: "xl", Family: spec.FamilySDXL, NativeWidth: 1024, NativeHeight: 1024})
	if m.Family != "sdxl" || m.NativeSize != "1024x1024" {
		t.Errorf("toModel = %+v", m)
	}
	if m := toModel("x", models.Info{}); m.Family != "" || m.NativeSize != "" {
		t.Errorf("a model without family: %+v", m)
	}
}
