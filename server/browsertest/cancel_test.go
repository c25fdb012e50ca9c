package browsertest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Cancel aborts the request and the server stops the job: its request
// ends as 499 (the client left), and the single GPU worker is free for the
// next job long before the cancelled one would have finished.
func TestPlaygroundCancelStopsTheJob(t *testing.T) {
	e := newEnv(t)
	tb := e.open(t, "/playground")
	tb.setKey(e.user)
	// 10 images x 150 steps (the most the API takes): one such image took
	// ~8s (model load included) on the 2-core test box, so the job outlasts
	// the bounds below many times over, and a fast machine is still at it
	// when Cancel is pressed.
	tb.fillForm("a long night", map[string]string{"n": "10", "steps": "150"})
	tb.do(chromedp.Click(chromedp.ID("go")),
		chromedp.WaitEnabled(chromedp.ID("cancel")),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(chromedp.ID("cancel")))
	if msg, isErr := tb.waitStatus(); !isErr || msg != "cancelled" {
		t.Fatalf("status %q (error %v), want cancelled", msg, isErr)
	}
	cancelled := time.Now()
	for {
		req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin) // metrics need an admin key
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if line := generationLine(string(body)); strings.Contains(line, `status="499"`) {
			t.Logf("the request ended as 499 %v after cancel", time.Since(cancelled))
			break
		} else if line != "" {
			t.Fatalf("the generation ended as %s, want 499", line)
		}
		if time.Since(cancelled) > 15*time.Second {
			t.Fatal("the server still runs the generation 15s after cancel")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if st, b := e.api(t, "POST", "/v1/images/generations", e.user, `{"model":"tiny","prompt":"x","steps":2,"response_format":"b64_json"}`); st != 200 {
		t.Fatalf("next generation: %d %v", st, b)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the next 2-step generation took %v: the cancelled job still held the worker", took)
	} else {
		t.Logf("the next 2-step generation took %v", took)
	}
}

// generationLine is the request counter of the generations route, if any.
func generationLine(metrics string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "sdgate_http_requests_total{") && strings.Contains(l, "/v1/images/generations") {
			return l
		}
	}
	return ""
}
