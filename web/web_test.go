package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/web"
)

func TestHandlerServesPagesWithCSP(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct{ path, ctype, want string }{
		{"/playground.html", "text/html", "<form"},
		{"/playground.js", "javascript", "authHeaders()"},
		{"/common.js", "javascript", "sessionStorage"},
		{"/dashboard.html", "text/html", `<script src="/web/dashboard.js">`},
		{"/dashboard.js", "javascript", "/v1/usage"},
		{"/style.css", "text/css", "body"},
		{"/sse.js", "javascript", "readEvents"},
		{"/mask.js", "javascript", "destination-out"},
		{"/snippets.js", "javascript", "extra_body"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", tc.path, rec.Code)
		}
		if got := rec.Header().Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: CSP %q", tc.path, got)
		}
		if !strings.Contains(rec.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: type %q body lacks %q", tc.path, rec.Header().Get("Content-Type"), tc.want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/missing.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("missing file: status %d, want 404", rec.Code)
	}
}

// scripts are every script the pages load.
var scripts = []string{"/common.js", "/playground.js", "/dashboard.js", "/sse.js", "/mask.js", "/snippets.js"}

// The pages must obey their own CSP: no inline <script> bodies, no style
// attributes or <style> elements, no inline event handlers, and the key never
// goes into a URL.
func TestPagesHaveNoInlineCode(t *testing.T) {
	h := web.Handler()
	inline := regexp.MustCompile(`(?i)<script(\s[^>]*)?>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, path := range []string{"/playground.html", "/dashboard.html"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		if m := inline.FindString(rec.Body.String()); m != "" {
			t.Errorf("%s has inline code the CSP blocks: %q", path, m)
		}
		if !strings.Contains(rec.Body.String(), `<script src="/web/common.js">`) {
			t.Errorf("%s does not load common.js", path)
		}
		for _, m := range regexp.MustCompile(`<script src="(/web/[a-z]+\.js)">`).FindAllStringSubmatch(rec.Body.String(), -1) {
			if !slices.Contains(scripts, strings.TrimPrefix(m[1], "/web")) {
				t.Errorf("%s loads %s, which this test does not check", path, m[1])
			}
		}
	}
	inURL := regexp.MustCompile(`[?&][a-z_]*key=`)
	for _, path := range scripts {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "eval(", "new Function", "localStorage", "document.write"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		if m := inURL.FindString(body); m != "" {
			t.Errorf("%s puts a key in a URL: %q", path, m)
		}
	}
}
