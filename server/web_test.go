package server

import (
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/web"
)

// The browser pages are reachable without a key even when keys are on: the
// key is pasted into the page, never needed to load it.
func TestWebPagesRedirectAndServeWithCSP(t *testing.T) {
	ts, _, _ := authServer(t)
	noFollow := *ts.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for path, want := range map[string]string{
		"/playground": "/web/playground.html",
		"/dashboard":  "/web/dashboard.html",
	} {
		resp, err := noFollow.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 302 to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	for _, path := range []string{"/web/dashboard.html", "/web/dashboard.js", "/web/common.js", "/web/playground.html"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: status %d, %d bytes", path, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("GET %s: CSP %q, want %q", path, got, web.CSP)
		}
	}
	if a := call(t, ts, "GET", "/web/nope.html", "", ""); a.status != http.StatusNotFound {
		t.Errorf("missing page: status %d, want 404", a.status)
	}
}

// Every usage field dashboard.js reads is one /v1/usage answers with, so a
// renamed JSON field breaks this test rather than the page.
func TestDashboardReadsUsageFields(t *testing.T) {
	ts, _, admin := authServer(t)
	if a := call(t, ts, "POST", "/v1/images/generations", admin, `{"prompt":"x","model":"sd-tiny","size":"64x64"}`); a.status != 200 {
		t.Fatalf("generate: %d %v", a.status, a.body)
	}
	a := call(t, ts, "GET", "/v1/usage?key_id=*", admin, "")
	if a.status != 200 {
		t.Fatalf("usage: %d %v", a.status, a.body)
	}
	data, _ := a.body["data"].([]any)
	if len(data) == 0 {
		t.Fatalf("usage has no rows after a generation: %v", a.body)
	}
	row, _ := data[0].(map[string]any)

	resp, err := ts.Client().Get(ts.URL + "/web/dashboard.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Field names appear in dashboard.js as r.NAME or quoted in its lists.
	fields := map[string]bool{}
	for _, m := range regexp.MustCompile(`\br\.([a-z_]+)\b|"([a-z_]+)"`).FindAllStringSubmatch(string(js), -1) {
		fields[m[1]+m[2]] = true
	}
	for _, name := range []string{"date", "key_id", "requests", "failed", "cached", "images", "pixels", "steps", "gpu_seconds"} {
		if !fields[name] {
			t.Errorf("dashboard.js does not read %q", name)
		}
		if _, ok := row[name]; !ok {
			t.Errorf("usage row lacks %q that dashboard.js reads: %v", name, row)
		}
	}
	if n, _ := row["images"].(float64); n < 1 {
		t.Errorf("usage row counts %v images after one generation", row["images"])
	}
	if !strings.Contains(string(js), `"key_id", "*"`) {
		t.Error("dashboard.js never asks for key_id=* (all keys)")
	}
}

// Every request field playground.js sends is a JSON name of the generation
// request, and a request with all of them set is accepted.
func TestPlaygroundSendsKnownFields(t *testing.T) {
	ts, _, admin := authServer(t)
	resp, err := ts.Client().Get(ts.URL + "/web/playground.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	known := map[string]bool{}
	rt := reflect.TypeOf(compat.ImageGenerationRequest{})
	for i := range rt.NumField() {
		known[strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	// The form's fields are the keys of the text and num maps in requestBody.
	maps := regexp.MustCompile(`const (?:text|num) = \{([^}]*)\}`).FindAllStringSubmatch(string(js), -1)
	if len(maps) != 2 {
		t.Fatalf("playground.js: found %d field maps, want 2", len(maps))
	}
	var sent []string
	for _, m := range maps {
		for _, kv := range regexp.MustCompile(`(\w+): "\w+"`).FindAllStringSubmatch(m[1], -1) {
			sent = append(sent, kv[1])
			if !known[kv[1]] {
				t.Errorf("playground.js sends %q, not a field of the generation request", kv[1])
			}
		}
	}
	if len(sent) < 9 {
		t.Errorf("playground.js sends only %v", sent)
	}
	body := `{"model":"sd-tiny","prompt":"x","response_format":"b64_json","size":"64x64","negative_prompt":"y",` +
		`"quality":"auto","scheduler":"ddim","output_format":"png","n":1,"seed":7,"steps":2,"guidance_scale":1.5}`
	if a := call(t, ts, "POST", "/v1/images/generations", admin, body); a.status != 200 {
		t.Errorf("a request with every playground field: %d %v", a.status, a.body)
	}
}
