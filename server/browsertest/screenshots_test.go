package browsertest

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestScreenshots pictures both pages in use, under the test's temp dir and,
// with -screenshots DIR, in DIR too (make screenshots refreshes docs/).
func TestScreenshots(t *testing.T) {
	e := newEnv(t)
	dirs := []string{t.TempDir()}
	if *screenshotDir != "" {
		dirs = append(dirs, *screenshotDir)
	}
	for _, key := range []string{e.user, e.admin} {
		if st, b := e.api(t, "POST", "/v1/images/generations", key,
			`{"model":"tiny","prompt":"a harbour at night","n":2,"steps":2,"response_format":"b64_json"}`); st != 200 {
			t.Fatalf("generate: %d %v", st, b)
		}
	}

	pg := e.open(t, "/playground")
	pg.setKey(e.user)
	pg.fillForm("a harbour at night, oil painting", map[string]string{"n": "3", "steps": "4", "seed": "42", "negative": "blurry"})
	if msg, isErr := pg.clickAndWait("#go"); isErr {
		t.Fatalf("generate: %s", msg)
	}
	save(t, pg, dirs, "playground.png")

	db := e.open(t, "/dashboard")
	db.do(chromedp.Click(chromedp.ID("all")))
	db.setKey(e.admin)
	if msg, isErr := db.waitStatus(); isErr {
		t.Fatalf("dashboard: %s", msg)
	}
	save(t, db, dirs, "dashboard.png")
}

// save writes a full-page screenshot of the tab as name in each dir, after
// checking it is a real picture of the page (right width, not blank).
func save(t *testing.T, tb *tab, dirs []string, name string) {
	t.Helper()
	shot := get(tb, chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 400 || colours(img) < 16 {
		t.Fatalf("%s: %v with %d colours does not look like the page", name, b, colours(img))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%s)", p, fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()))
	}
}

func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}
