package server

import (
	"image"
	"image/color"
	"testing"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// finish puts the kept pixels of the original back exactly after the
// resize to the delivered size, and leaves the repainted ones generated.
func TestPlanFinishRestoresKeptPixels(t *testing.T) {
	orig := testPicture(96, 96, image.Rectangle{})
	hole := image.Rect(10, 20, 50, 40)
	mask := compat.RepaintRegion(testPicture(96, 96, hole))
	info := models.Info{ID: "m", NativeWidth: 64, NativeHeight: 64, DefaultSteps: 4, CanEncode: true}
	plan, err := FromEditRequest(compat.ImageEditRequest{Prompt: "p"}, testTarget(t, "m", compat.FamilyLocal, info),
		EditInput{Image: orig, Mask: mask}, 1)
	if err != nil {
		t.Fatal(err)
	}
	generated := image.NewRGBA(image.Rect(0, 0, plan.SD.Width, plan.SD.Height))
	for i := range generated.Pix {
		generated.Pix[i] = 200
	}
	out := plan.finish(generated)
	if out.Bounds().Size() != image.Pt(96, 96) {
		t.Fatalf("finished %v", out.Bounds())
	}
	for y := range 96 {
		for x := range 96 {
			got := out.RGBAAt(x, y)
			if (image.Point{x, y}).In(hole) {
				if got != (color.RGBA{200, 200, 200, 200}) {
					t.Fatalf("repainted pixel %d,%d = %v, want the generated one", x, y, got)
				}
				continue
			}
			o := orig.NRGBAAt(x, y)
			if got != (color.RGBA{o.R, o.G, o.B, 255}) {
				t.Fatalf("kept pixel %d,%d = %v, want the original %v", x, y, got, o)
			}
		}
	}
	if generated.Pix[0] != 200 {
		t.Error("finish wrote into the generator's image")
	}
	// Same size: the plan without a mask passes the image through.
	plain := GenerationPlan{Width: 4, Height: 4}
	if img := image.NewRGBA(image.Rect(0, 0, 4, 4)); plain.finish(img) != img {
		t.Error("a plain plan copied an image it did not need to")
	}
}

func TestScaleMask(t *testing.T) {
	thin := image.NewGray(image.Rect(0, 0, 100, 100))
	for y := range 100 {
		thin.SetGray(37, y, color.Gray{compat.MaskRepaint}) // one pixel wide
	}
	small := scaleMask(thin, 10, 10)
	for y := range 10 {
		for x := range 10 {
			want := uint8(compat.MaskKeep)
			if x == 3 {
				want = compat.MaskRepaint
			}
			if got := small.GrayAt(x, y).Y; got != want {
				t.Fatalf("shrunk mask at %d,%d = %d, want %d", x, y, got, want)
			}
		}
	}
	dot := image.NewGray(image.Rect(0, 0, 2, 2))
	dot.SetGray(1, 0, color.Gray{compat.MaskRepaint})
	big := scaleMask(dot, 4, 4)
	for y := range 4 {
		for x := range 4 {
			want := uint8(compat.MaskKeep)
			if x >= 2 && y < 2 {
				want = compat.MaskRepaint
			}
			if got := big.GrayAt(x, y).Y; got != want {
				t.Fatalf("grown mask at %d,%d = %d, want %d", x, y, got, want)
			}
		}
	}
	if scaleMask(dot, 2, 2) != dot {
		t.Error("same size should return the mask itself")
	}
}

func TestOpaqueRGBA(t *testing.T) {
	half := image.NewNRGBA(image.Rect(5, 5, 7, 6)) // not at the origin
	half.SetNRGBA(5, 5, color.NRGBA{200, 100, 50, 128})
	half.SetNRGBA(6, 5, color.NRGBA{1, 2, 3, 0})
	paletted := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{200, 100, 50, 128}, color.NRGBA{1, 2, 3, 255}})
	paletted.SetColorIndex(1, 0, 1)
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.SetGray(0, 0, color.Gray{200})
	gray.SetGray(1, 0, color.Gray{7})
	tests := []struct {
		name string
		img  image.Image
		want [2]color.RGBA
	}{
		{"NRGBA keeps the colour of half-transparent pixels", half, [2]color.RGBA{{200, 100, 50, 255}, {1, 2, 3, 255}}},
		{"paletted", paletted, [2]color.RGBA{{200, 100, 50, 255}, {1, 2, 3, 255}}},
		{"opaque gray", gray, [2]color.RGBA{{200, 200, 200, 255}, {7, 7, 7, 255}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := opaqueRGBA(tt.img)
			if got.Rect != image.Rect(0, 0, 2, 1) {
				t.Fatalf("bounds %v", got.Rect)
			}
			for x, want := range tt.want {
				// paletted: 128/255 un-premultiplies back to within one step.
				if c := got.RGBAAt(x, 0); diff8(c.R, want.R) > 1 || diff8(c.G, want.G) > 1 || diff8(c.B, want.B) > 1 || c.A != 255 {
					t.Errorf("pixel %d = %v, want %v", x, c, want)
				}
			}
		})
	}
}

func diff8(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
