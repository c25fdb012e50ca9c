package browsertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// fillForm waits for the model list (it loads once the key is set), picks
// the tiny model and fills the prompt and the fields given as id -> value.
func (tb *tab) fillForm(prompt string, fields map[string]string) {
	tb.t.Helper()
	tb.do(chromedp.WaitReady(chromedp.CSS(`#model option[value="tiny"]`)),
		chromedp.SetValue(chromedp.ID("model"), "tiny"),
		chromedp.SendKeys(chromedp.ID("prompt"), prompt))
	for id, v := range fields {
		tb.do(chromedp.SetValue(chromedp.ID(id), v))
	}
}

func TestPlaygroundGenerates(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	tb.setKey(e.user)
	tb.fillForm("a lighthouse at dusk", map[string]string{"size": "64x64", "n": "2", "seed": "7", "steps": "2"})
	// The model list says each folder's family and native size.
	if label := get(tb, chromedp.Evaluate[string](`document.querySelector('#model option[value="tiny"]').textContent`)); label != "tiny (sd15, 64x64)" {
		t.Errorf("model option %q, want %q", label, "tiny (sd15, 64x64)")
	}
	if msg, isErr := tb.clickAndWait("#go"); isErr || msg != "done" {
		t.Fatalf("status %q (error %v), want done", msg, isErr)
	}
	type shown struct {
		Src     string `json:"src"`
		W       int    `json:"w"`
		H       int    `json:"h"`
		Caption string `json:"caption"`
	}
	imgs := get(tb, chromedp.Evaluate[[]shown](`[...document.querySelectorAll("#out figure")].map((f) => { const i = f.querySelector("img");
	  return {src: i.src, w: i.naturalWidth, h: i.naturalHeight, caption: f.querySelector("figcaption").textContent}; })`))
	if len(imgs) != 2 {
		t.Fatalf("%d images shown, want 2", len(imgs))
	}
	for i, im := range imgs {
		if im.W != 64 || im.H != 64 {
			t.Errorf("image %d: the browser decoded %dx%d, want 64x64", i, im.W, im.H)
		}
		if b := dataURLImage(t, im.Src).Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("image %d: PNG is %v, want 64x64", i, b)
		}
		// n images from one seed get consecutive seeds.
		if want := []string{"seed 7", "seed 8"}[i]; !strings.Contains(im.Caption, want) {
			t.Errorf("image %d caption %q lacks %q", i, im.Caption, want)
		}
	}
	if curl := tb.text("#curl"); !strings.Contains(curl, `"seed":7`) || strings.Contains(curl, e.user) {
		t.Errorf("curl snippet does not match the request or leaks the key:\n%s", curl)
	}
	stored := get(tb, chromedp.Evaluate[string](`sessionStorage.getItem("sdgate-key")`))
	if stored != e.user {
		t.Errorf("sessionStorage holds %q, want the pasted key", stored)
	}
}

// A wrong key and a bad size each show the server's own error message.
func TestPlaygroundShowsServerErrors(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	tb.expectHTTPFailures = true

	tb.setKey("sk-not-a-key")
	msg, isErr := tb.waitStatus()
	_, body := e.api(t, "GET", "/v1/models", "sk-not-a-key", "")
	if want := errMessage(body); !isErr || msg != want || want == "" {
		t.Errorf("wrong key: status %q (error %v), want the server's %q", msg, isErr, want)
	}

	tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("key").value = ""`))
	tb.setKey(e.user)
	tb.fillForm("x", map[string]string{"size": "65x64"})
	msg, isErr = tb.clickAndWait("#go")
	_, body = e.api(t, "POST", "/v1/images/generations", e.user,
		`{"model":"tiny","prompt":"x","response_format":"b64_json","size":"65x64","n":1}`)
	if want := errMessage(body); !isErr || msg != want || want == "" {
		t.Errorf("bad size: status %q (error %v), want the server's %q", msg, isErr, want)
	}
	if n := get(tb, chromedp.Evaluate[int](`document.querySelectorAll("#out img").length`)); n != 0 {
		t.Errorf("%d images shown after an error", n)
	}

	// Edits: no picture yet, then a file that is no image.
	tb.do(chromedp.SetValue(chromedp.ID("mode"), "edits"))
	if msg, isErr := tb.clickAndWait("#go"); !isErr || msg != "Choose an image to edit first." {
		t.Errorf("edit without a picture: status %q (error %v)", msg, isErr)
	}
	notImage := filepath.Join(t.TempDir(), "notes.png")
	if err := os.WriteFile(notImage, []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("status").textContent = ""`),
		chromedp.SetUploadFiles(chromedp.ID("image"), []string{notImage}))
	if msg, isErr := tb.waitStatus(); !isErr || msg != "That file is not an image the browser can read." {
		t.Errorf("a file that is no image: status %q (error %v)", msg, isErr)
	}
}

// The tab's checks can fail: a page that breaks its CSP, asks another host
// and puts the key in a URL is caught.
func TestHarnessCatchesViolations(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	tb.skipChecks = true
	tb.setKey(e.user)
	tb.do(chromedp.WaitReady(chromedp.CSS(`#model option[value="tiny"]`)),
		chromedp.Evaluate[chromedp.Void](`{ const i = new Image(); i.src = "http://example.invalid/x.png"; document.body.append(i);
	  const s = document.createElement("div"); s.setAttribute("style", "color:red"); document.body.append(s);
	  fetch("/v1/models?api_key=" + sessionStorage.getItem("sdgate-key")); }`),
		chromedp.Sleep(300*time.Millisecond))
	// The CSP stops foreign requests before the network, so feed the
	// recorder one as Chromium reports it.
	tb.onEvent(&network.EventRequestWillBeSent{Request: &network.Request{URL: "https://cdn.example.com/lib.js"}})
	got := strings.Join(tb.complaints(), "\n")
	for _, want := range []string{"page requested https://cdn.example.com/lib.js, not on the server's host", "CSP violation: img-src blocked http://example.invalid/x.png", "CSP violation: style-src-attr",
		"the key went into a URL: " + e.url + "/v1/models?api_key=" + e.user} {
		if !strings.Contains(got, want) {
			t.Errorf("complaints lack %q:\n%s", want, got)
		}
	}
}
