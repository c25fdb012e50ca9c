package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
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
	}
	for _, path := range []string{"/common.js", "/playground.js", "/dashboard.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body := rec.Body.String()
		for _, bad := range []string{"innerHTML", "eval(", "localStorage", "key="} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
	}
}
