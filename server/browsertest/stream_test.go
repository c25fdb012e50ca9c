package browsertest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A streamed generation shows each image the server's events carry, and
// the snippets stream too.
func TestPlaygroundStreams(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	tb.setKey(e.user)
	tb.fillForm("a comet", map[string]string{"n": "2", "steps": "2", "seed": "11", "partials": "2"})
	tb.do(chromedp.Click(chromedp.ID("stream")))
	if msg, isErr := tb.clickAndWait("#go"); isErr || msg != "done" {
		t.Fatalf("stream: status %q (error %v), want done", msg, isErr)
	}
	captions := get(tb, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#out figure:not(.partial) figcaption")].map(
	  (c) => c.firstChild.textContent)`))
	if strings.Join(captions, ",") != "seed 11,seed 12" {
		t.Errorf("streamed figures %q, want seeds 11 and 12", captions)
	}
	for _, s := range get(tb, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#out img")].map((i) => i.src)`)) {
		if b := dataURLImage(t, s).Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("streamed image is %v, want 64x64", b)
		}
	}
	py, node := tb.text("#python"), tb.text("#node")
	if !strings.Contains(py, "stream=True") || !strings.Contains(py, "partial_images=2") || !strings.Contains(py, `extra_body={"seed": 11, "steps": 2}`) {
		t.Errorf("Python snippet does not match the streamed request:\n%s", py)
	}
	if !strings.Contains(node, `stream: true`) || !strings.Contains(node, "for await (const ev of result)") {
		t.Errorf("Node snippet does not stream:\n%s", node)
	}
}

// readEvents splits a stream however its chunks fall: events cut mid-line,
// CRLF line ends, comments, multi-line data, partial_image events (in
// OpenAI's shape) and an error event that ends the stream.
func TestSSEReaderSplitsEvents(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	got := get(tb, chromedp.Evaluate[[]string](`(async () => {
	  const chunks = [": keep-alive\n\nevent: image_generation.partial_image\r\ndata: {\"type\":\"image_generation.partial_image\",",
	    "\"b64_json\":\"AAAA\",\"partial_image_index\":0,\"size\":\"64x64\"}\r\n\r\nevent: image_generation.comp",
	    "leted\ndata: {\"type\":\"image_generation.completed\",\ndata: \"b64_json\":\"BBBB\",\"seed\":5}\n\n",
	    "event: error\ndata: {\"error\":{\"message\":\"queue is full\"}}\n\n", "event: never\ndata: {}\n\n"];
	  const body = new ReadableStream({ start(c) { for (const s of chunks) c.enqueue(new TextEncoder().encode(s)); c.close(); } });
	  const seen = [];
	  try { await readEvents(new Response(body), (type, ev) => seen.push(type + " " + (ev.b64_json || "") + " " + (ev.partial_image_index ?? ev.seed))); }
	  catch (e) { seen.push("error " + e.message); }
	  return seen; })()`, chromedp.EvalAwaitPromise))
	want := "image_generation.partial_image AAAA 0|image_generation.completed BBBB 5|error queue is full"
	if strings.Join(got, "|") != want {
		t.Errorf("events\n%q\nwant\n%q", strings.Join(got, "|"), want)
	}
}

// Partial images (which this server's pipeline does not send yet) show as a
// faded preview that each newer partial replaces and the completed image
// takes the place of; a second image starts its own preview.
func TestPlaygroundShowsPartialImages(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)))
	b64 := base64.StdEncoding.EncodeToString(buf.Bytes())
	got := get(tb, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => {
	  const b64 = %q, seen = [];
	  const shot = () => seen.push([...document.querySelectorAll("#out figure")].map(
	    (f) => f.className + ":" + f.querySelector("figcaption").firstChild.textContent).join(","));
	  document.getElementById("out").replaceChildren();
	  for (const [type, ev] of [
	    ["image_generation.partial_image", {b64_json: b64, partial_image_index: 0}],
	    ["image_generation.partial_image", {b64_json: b64, partial_image_index: 1}],
	    ["image_generation.completed", {b64_json: b64, seed: 5}],
	    ["image_generation.partial_image", {b64_json: b64, partial_image_index: 0}],
	    ["image_generation.completed", {b64_json: b64, seed: 6}]]) {
	    showStreamEvent(type, ev, "image/png");
	    shot();
	  }
	  return seen; })()`, b64)))
	want := []string{"partial:partial 1", "partial:partial 2", ":seed 5", ":seed 5,partial:partial 1", ":seed 5,:seed 6"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("figures after each event\n%q\nwant\n%q", got, want)
	}
	// Data URLs decode asynchronously: wait for both (the tab's deadline
	// fails the test if they never do).
	get(tb, chromedp.Poll[bool](`[...document.querySelectorAll("#out img")].filter((i) => i.naturalWidth === 8).length === 2 || null`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
}
