package browsertest

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// writePicture writes an opaque 64x64 gradient PNG to upload.
func writePicture(t *testing.T) (string, *image.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 4), uint8(255 - x*2), 255})
		}
	}
	path := filepath.Join(t.TempDir(), "picture.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, img
}

// paintStroke drags the mouse across the edit canvas at height fy, from fx0
// to fx1 (fractions of the canvas), as a person painting does.
func (tb *tab) paintStroke(fx0, fx1, fy float64) {
	tb.t.Helper()
	type rect struct{ X, Y, W, H float64 }
	r := get(tb, chromedp.Evaluate[rect](`(() => { const c = document.getElementById("canvas"); c.scrollIntoView();
	  const r = c.getBoundingClientRect(); return {X: r.left, Y: r.top, W: r.width, H: r.height}; })()`))
	at := func(fx float64) (float64, float64) { return r.X + fx*r.W, r.Y + fy*r.H }
	x0, y := at(fx0)
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MousePressed, x0, y, chromedp.ButtonLeft, chromedp.ClickCount(1))}
	for i := 1; i <= 8; i++ {
		x, y := at(fx0 + (fx1-fx0)*float64(i)/8)
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft))
	}
	x1, _ := at(fx1)
	tb.do(append(steps, chromedp.MouseEvent(chromedp.MouseReleased, x1, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))...)
}

// An uploaded picture with a stripe painted across it comes back with
// every unpainted pixel as it was; a variation of the result then shows.
func TestPlaygroundEditsWithPaintedMaskAndVariations(t *testing.T) {
	e := newEnv(t)
	path, orig := writePicture(t)
	tb := e.open(t, "/playground")
	tb.setKey(e.user)
	tb.fillForm("a red stripe", map[string]string{"mode": "edits", "steps": "2", "seed": "3", "size": "64x64"})
	tb.do(chromedp.SetUploadFiles(chromedp.ID("image"), []string{path}), chromedp.WaitVisible(chromedp.ID("canvas")))
	tb.paintStroke(0.2, 0.8, 0.5)
	if msg, isErr := tb.clickAndWait("#go"); isErr || msg != "done" {
		t.Fatalf("edit: status %q (error %v), want done", msg, isErr)
	}
	mask := dataURLImage(t, get(tb, chromedp.Evaluate[string](`editor.mask.toDataURL("image/png")`)))
	if _, _, _, a := mask.At(32, 32).RGBA(); a != 0 {
		t.Errorf("mask alpha %d at the stroke's middle, want 0 (repaint)", a)
	}
	if _, _, _, a := mask.At(2, 2).RGBA(); a != 0xffff {
		t.Errorf("mask alpha %d in an unpainted corner, want opaque", a)
	}
	out := dataURLImage(t, get(tb, chromedp.Evaluate[string](`document.querySelector("#out img").src`)))
	if b := out.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
		t.Fatalf("edit result is %v, want 64x64", b)
	}
	var kept, changed, repainted int
	for y := range 64 {
		for x := range 64 {
			_, _, _, a := mask.At(x, y).RGBA()
			or, og, ob, _ := orig.At(x, y).RGBA()
			r, g, b, _ := out.At(x, y).RGBA()
			same := or>>8 == r>>8 && og>>8 == g>>8 && ob>>8 == b>>8
			switch {
			case a == 0xffff:
				kept++
				if !same {
					t.Fatalf("unpainted pixel (%d,%d) changed: %v -> %v", x, y, orig.At(x, y), out.At(x, y))
				}
			case a == 0:
				repainted++
				if !same {
					changed++
				}
			}
		}
	}
	if kept < 64*64/3 || repainted < 64 || changed == 0 {
		t.Errorf("kept %d, repainted %d (%d changed) of 64x64 pixels: the stroke did not become the mask", kept, repainted, changed)
	}
	if py := tb.text("#python"); !strings.Contains(py, "client.images.edit(") || !strings.Contains(py, `mask=open("mask.png", "rb")`) {
		t.Errorf("Python snippet does not show the edit with its mask:\n%s", py)
	}

	tb.do(chromedp.SetValue(chromedp.ID("n"), "2"))
	if msg, isErr := tb.clickAndWait("#out figure button"); isErr || msg != "done" {
		t.Fatalf("variations: status %q (error %v), want done", msg, isErr)
	}
	srcs := get(tb, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#out img")].map((i) => i.src)`))
	if len(srcs) != 2 {
		t.Fatalf("%d variations shown, want 2", len(srcs))
	}
	for _, s := range srcs {
		if b := dataURLImage(t, s).Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("variation is %v, want 64x64", b)
		}
	}
	if curl := tb.text("#curl"); !strings.Contains(curl, "/v1/images/variations") || !strings.Contains(curl, "-F image=@image.png") {
		t.Errorf("curl snippet is not the variation:\n%s", curl)
	}
	// create_variation takes no prompt argument: the extension goes in extra_body.
	if py := tb.text("#python"); !strings.Contains(py, "client.images.create_variation(") ||
		!strings.Contains(py, `extra_body={"prompt": "a red stripe", "seed": 3, "steps": 2}`) {
		t.Errorf("Python snippet is not the variation with its extensions in extra_body:\n%s", py)
	}
}
