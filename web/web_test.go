package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/web"
)

func TestHandlerServesPagesWithCSP(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct{ path, ctype, want string }{
		{"/playground.html", "text/html", "<form"},
		{"/playground.js", "javascript", "sessionStorage"},
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
