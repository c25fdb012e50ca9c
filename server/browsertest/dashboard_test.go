package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sdgate/sdgate/auth"
)

// rowTexts is the cell texts of each body row of a table.
func (tb *tab) rowTexts(table string) [][]string {
	tb.t.Helper()
	return get(tb, chromedp.Evaluate[[][]string](fmt.Sprintf(`[...document.querySelectorAll("#%s tbody tr")].map(
	  (tr) => [...tr.cells].map((c) => c.textContent))`, table)))
}

// An admin sees every key's usage, the keys and the resident models; a
// plain key sees only its own usage.
func TestDashboardShowsUsageKeysAndModels(t *testing.T) {
	e := newEnv(t)
	for _, g := range []struct {
		key string
		n   int
	}{{e.user, 2}, {e.admin, 1}} {
		body := fmt.Sprintf(`{"model":"tiny","prompt":"a boat","n":%d,"steps":2,"response_format":"b64_json"}`, g.n)
		if st, b := e.api(t, "POST", "/v1/images/generations", g.key, body); st != 200 {
			t.Fatalf("generate: %d %v", st, b)
		}
	}

	tb := e.open(t, "/dashboard")
	tb.do(chromedp.Click(chromedp.ID("all")))
	tb.setKey(e.admin) // loads at once
	if msg, isErr := tb.waitStatus(); isErr {
		t.Fatalf("admin dashboard: %s", msg)
	}
	images := map[string]string{}
	for _, r := range tb.rowTexts("days") {
		images[strings.Fields(r[1])[0]] = r[6]
		if r[2] != "tiny" {
			t.Errorf("usage row %v: model %q, want tiny", r, r[2])
		}
	}
	if images["alice"] != "2" || images["admin"] != "1" {
		t.Errorf("usage rows by key name -> images: %v, want alice 2 and admin 1", images)
	}
	if srv := tb.text("#server"); !strings.Contains(srv, "0 jobs queued") || !strings.Contains(srv, "1 model(s) resident") ||
		!strings.Contains(srv, "images delivered") {
		t.Errorf("server line %q lacks the queue depth, resident models or images", srv)
	}
	names := map[string]bool{}
	for _, r := range tb.rowTexts("keys") {
		names[r[0]] = true
	}
	if !names["alice"] || !names["admin"] {
		t.Errorf("keys table lists %v, want alice and admin", names)
	}
	models := tb.rowTexts("models")
	if len(models) != 1 || models[0][0] != "tiny" || models[0][1] != "loaded" || models[0][2] != "64x64" {
		t.Errorf("models table %v, want tiny, loaded, 64x64", models)
	}
	// Recent requests: one per generation, newest first, with model,
	// endpoint, status, cache outcome and images.
	recent := tb.rowTexts("recent")
	if len(recent) != 2 || recent[0][1] != "admin" || recent[1][1] != "alice" {
		t.Errorf("recent requests %v, want admin's then alice's", recent)
	}
	for _, r := range recent {
		if len(r) != 9 || r[2] != "tiny" || r[3] != "generations" || r[4] != "200" || r[5] != "miss" || !strings.HasSuffix(r[7], " ms") {
			t.Errorf("recent request row %v", r)
		}
	}
	if bars := get(tb, chromedp.Evaluate[int](`document.querySelectorAll("#charts svg rect").length`)); bars < 4 {
		t.Errorf("%d chart bars, want one per metric at least", bars)
	}

	own := e.open(t, "/dashboard")
	own.setKey(e.user)
	if msg, isErr := own.waitStatus(); isErr {
		t.Fatalf("user dashboard: %s", msg)
	}
	rows := own.rowTexts("days")
	if len(rows) != 1 || rows[0][6] != "2" {
		t.Errorf("alice's dashboard rows %v, want her one day with 2 images", rows)
	}
	if text := get(tb, chromedp.Evaluate[string](`document.body.innerText`)); strings.Contains(text, e.user) || strings.Contains(text, e.admin) {
		t.Error("the dashboard shows a key's secret")
	}
	if hidden := get(tb, chromedp.Evaluate[bool](`document.getElementById("admin").hidden`)); hidden {
		t.Error("admin section hidden for the admin")
	}
	if hidden := get(own, chromedp.Evaluate[bool](`document.getElementById("admin").hidden`)); !hidden {
		t.Error("admin section shown to a plain key")
	}
}

// A key with limits sees them and what is left after its images.
func TestDashboardShowsLimitsLeft(t *testing.T) {
	e := newEnv(t)
	// Limits are token buckets: 2 images a minute refill one per 30s, so
	// after 2 images at most one is back while the test runs.
	bob, _, err := e.gate.CreateKey(context.Background(), auth.KeySpec{Name: "bob",
		Limits: auth.Limits{RequestsPerMinute: 60, ImagesPerMinute: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if st, b := e.api(t, "POST", "/v1/images/generations", bob, `{"model":"tiny","prompt":"x","n":2,"steps":2,"response_format":"b64_json"}`); st != 200 {
		t.Fatalf("generate: %d %v", st, b)
	}
	tb := e.open(t, "/dashboard")
	tb.setKey(bob)
	if msg, isErr := tb.waitStatus(); isErr {
		t.Fatalf("dashboard: %s", msg)
	}
	limits := map[string]string{}
	for _, r := range get(tb, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("#limtab tr")].map(
	  (tr) => [...tr.cells].map((c) => c.textContent))`)) {
		limits[r[0]] = r[1]
	}
	left := limits["x-ratelimit-remaining-images"]
	if limits["x-ratelimit-limit-images"] != "2" || (left != "0" && left != "1") ||
		limits["x-ratelimit-limit-requests"] != "60" || limits["x-ratelimit-remaining-requests"] == "" {
		t.Errorf("limits shown %v, want 2 images a minute with at most 1 left, and 60 requests", limits)
	}
	if hidden := get(tb, chromedp.Evaluate[bool](`document.getElementById("limits").hidden`)); hidden {
		t.Error("the limits section is hidden")
	}
}
