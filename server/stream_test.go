package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/compat"
)

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data map[string]any
	raw  string
}

func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		name, data, ok := strings.Cut(block, "\ndata: ")
		if !ok || !strings.HasPrefix(name, "event: ") {
			t.Fatalf("not an event: %q", block)
		}
		ev := sseEvent{name: strings.TrimPrefix(name, "event: "), raw: data}
		if err := json.Unmarshal([]byte(data), &ev.data); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		out = append(out, ev)
	}
	return out
}

// checkStreamEvent checks an event's type, upstream's fields and its PNG.
func checkStreamEvent(t *testing.T, ev sseEvent, typ string, index int, size string) {
	t.Helper()
	keys := []string{"type", "b64_json", "created_at", "size", "quality", "background", "output_format"}
	if index >= 0 {
		keys = append(keys, "partial_image_index")
	} else {
		keys = append(keys, "usage")
	}
	for _, k := range keys {
		if _, ok := ev.data[k]; !ok {
			t.Errorf("%s event lacks %q: %s", typ, k, ev.raw)
		}
	}
	if ev.name != typ || ev.data["type"] != typ || ev.data["size"] != size || ev.data["output_format"] != "png" ||
		ev.data["background"] != "opaque" || ev.data["quality"] != "high" {
		t.Errorf("event %q: %.300s", ev.name, ev.raw)
	}
	if index >= 0 && ev.data["partial_image_index"] != float64(index) {
		t.Errorf("partial_image_index %v, want %d", ev.data["partial_image_index"], index)
	}
	if index < 0 && ev.data["partial_image_index"] != nil {
		t.Errorf("a completed event has partial_image_index %v", ev.data["partial_image_index"])
	}
	data, err := base64.StdEncoding.DecodeString(ev.data["b64_json"].(string))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", typ, err)
	}
	if got := compat.FormatSize(img.Bounds().Dx(), img.Bounds().Dy()); got != size {
		t.Errorf("%s image is %s, want %s", typ, got, size)
	}
}

func TestStreamPartialImages(t *testing.T) {
	ts := startServer(t, newFakeGenerator())
	for _, partials := range []int{0, 1, 2, 3} {
		body := `{"prompt":"x","model":"gpt-image-1","quality":"high","stream":true,"seed":5,"partial_images":` + string(rune('0'+partials)) + `}`
		r := postJSON(t, ts.Client(), ts.URL, body)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d type %q: %.200s", r.status, r.header.Get("Content-Type"), r.body)
		}
		events := parseSSE(t, r.body)
		if len(events) != partials+1 {
			t.Fatalf("partial_images %d: %d events", partials, len(events))
		}
		for i, ev := range events[:partials] {
			checkStreamEvent(t, ev, compat.EventImageGenerationPartial, i, "1024x1024") // "auto": upstream's size
		}
		checkStreamEvent(t, events[partials], compat.EventImageGenerationCompleted, -1, "1024x1024")
		if slices.ContainsFunc(events[:partials], func(e sseEvent) bool { return e.data["b64_json"] == events[partials].data["b64_json"] }) {
			t.Error("a partial image equals the final one")
		}
	}
}

func TestStreamEdits(t *testing.T) {
	ts := startServer(t, editFake())
	square := encodeTo(t, "png", testPicture(64, 64, image.Rect(0, 0, 16, 16)))
	r := postForm(t, ts, "/v1/images/edits", filePart("image", square), textPart("prompt", "p"),
		textPart("model", "gpt-image-1"), textPart("quality", "high"), textPart("stream", "true"), textPart("partial_images", "2"))
	if r.status != 200 {
		t.Fatalf("status %d: %.300s", r.status, r.body)
	}
	events := parseSSE(t, r.body)
	if len(events) != 3 {
		t.Fatalf("%d events, want 2 partial + 1 completed", len(events))
	}
	// "auto" on a square input: upstream's 1024x1024.
	checkStreamEvent(t, events[0], compat.EventImageEditPartial, 0, "1024x1024")
	checkStreamEvent(t, events[1], compat.EventImageEditPartial, 1, "1024x1024")
	checkStreamEvent(t, events[2], compat.EventImageEditCompleted, -1, "1024x1024")
}

// A client that leaves after the first partial image cancels the
// generation, and the request is still metered, as a 499.
func TestStreamDisconnectCancelsAndMeters(t *testing.T) {
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, _ := auth.New(store, auth.Options{})
	key, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "s"})
	gen := newFakeGenerator()
	gen.setDelay(time.Minute)
	ts := startServer(t, gen, func(o *Options) { o.Gate = gate })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := postGeneration(ctx, ts.URL, `{"prompt":"x","model":"gpt-image-1","stream":true,"partial_images":1}`, key)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "event: image_generation.partial_image\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for gen.cancelled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if gen.cancelled.Load() != 1 {
		t.Fatal("the generation went on after the client left")
	}
	for time.Now().Before(deadline) {
		usage := call(t, ts, "GET", "/v1/usage", key, "")
		if data, _ := usage.body["data"].([]any); len(data) == 1 {
			day := data[0].(map[string]any)
			if day["requests"] != float64(1) || day["failed"] != float64(1) || day["gpu_seconds"].(float64) <= 0 {
				t.Errorf("usage %v, want one failed request with its GPU time", day)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the cancelled stream was not metered")
}

// Nothing streamed yet: an error is an ordinary error answer.
func TestStreamErrorBeforeTheFirstEvent(t *testing.T) {
	gen := newFakeGenerator()
	gen.fail(context.DeadlineExceeded)
	ts := startServer(t, gen)
	r := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","model":"gpt-image-1","stream":true,"partial_images":2}`)
	if r.status == http.StatusOK || strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q", r.status, r.header.Get("Content-Type"))
	}
}
