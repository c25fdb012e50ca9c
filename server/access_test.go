package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/auth"
)

func TestEncodedBodiesRefused(t *testing.T) {
	ts, _, admin := authServer(t)
	for _, ce := range []string{"gzip", "br", "deflate, gzip"} {
		a := call(t, ts, "POST", "/v1/images/generations", admin, genBody, "Content-Encoding", ce)
		if _, code, _ := errorOf(a); a.status != http.StatusUnsupportedMediaType || code != "unsupported_content_encoding" {
			t.Errorf("Content-Encoding %q: %d %s, want 415 unsupported_content_encoding", ce, a.status, code)
		}
	}
	if a := call(t, ts, "POST", "/v1/images/generations", admin, genBody, "Content-Encoding", "identity"); a.status != http.StatusOK {
		t.Errorf("identity: %d, want 200", a.status)
	}
}

func TestMetricsNeedAnAdminKey(t *testing.T) {
	ts, gate, admin := authServer(t)
	user := newKey(t, gate, auth.KeySpec{Name: "user"})
	for _, tt := range []struct {
		key    string
		status int
	}{{"", 401}, {user, 403}, {admin, 200}} {
		if a := call(t, ts, "GET", "/metrics", tt.key, ""); a.status != tt.status {
			t.Errorf("key %q: %d, want %d", tt.key, a.status, tt.status)
		}
	}

	s, err := New(newFakeGenerator(), Options{Gate: gate, MetricsSeparate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	api := httptest.NewServer(s.Handler())
	defer api.Close()
	if a := call(t, api, "GET", "/metrics", admin, ""); a.status != http.StatusNotFound {
		t.Errorf("separate metrics: the API answers /metrics %d, want 404", a.status)
	}
	metrics := httptest.NewServer(s.MetricsHandler())
	defer metrics.Close()
	resp, err := metrics.Client().Get(metrics.URL)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(text), "sdgate_") {
		t.Errorf("metrics listener: %d %.80q", resp.StatusCode, text)
	}
}

// TestModelsFilteredByKey: a key restricted to sd-turbo sees only it; the
// OpenAI names resolve to sd-tiny, so they are neither listed nor named.
func TestModelsFilteredByKey(t *testing.T) {
	ts, gate, admin := authServer(t)
	turbo := newKey(t, gate, auth.KeySpec{Name: "turbo", Models: []string{"sd-turbo"}})
	a := call(t, ts, "GET", "/v1/models", turbo, "")
	data, _ := a.body["data"].([]any)
	var ids []string
	for _, m := range data {
		ids = append(ids, m.(map[string]any)["id"].(string))
	}
	if strings.Join(ids, ",") != "sd-turbo" {
		t.Errorf("restricted key lists %v, want [sd-turbo]", ids)
	}
	if all := call(t, ts, "GET", "/v1/models", admin, ""); len(all.body["data"].([]any)) <= 2 {
		t.Errorf("unrestricted key lists %d models", len(all.body["data"].([]any)))
	}
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/v1/models/dall-e-2", ""},
		{"GET", "/v1/models/sd-tiny", ""},
		{"POST", "/v1/images/generations", `{"model":"dall-e-2","prompt":"x"}`},
		{"POST", "/v1/images/generations", `{"model":"dall-e-3","prompt":"x","n":5}`},
	} {
		a := call(t, ts, tt.method, tt.path, turbo, tt.body)
		_, code, msg := errorOf(a)
		if a.status != http.StatusNotFound || code != "model_not_found" {
			t.Errorf("%s %s %s: %d %s, want 404 model_not_found", tt.method, tt.path, tt.body, a.status, code)
		}
		if strings.Contains(msg, "sd-tiny") && !strings.Contains(tt.path, "sd-tiny") {
			t.Errorf("%s %s: the 404 names the alias target: %q", tt.method, tt.path, msg)
		}
	}
}

func TestLastAdminNotRevocableOverHTTP(t *testing.T) {
	ts, gate, admin := authServer(t)
	keys, err := gate.ListKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
	self := keys[0].ID
	a := call(t, ts, "DELETE", "/v1/admin/keys/"+self, admin, "")
	if _, code, _ := errorOf(a); a.status != http.StatusConflict || code != "last_admin_key" {
		t.Fatalf("revoking the last admin: %d %s, want 409 last_admin_key", a.status, code)
	}
	if a := call(t, ts, "GET", "/v1/admin/keys", admin, ""); a.status != http.StatusOK {
		t.Fatalf("the admin key stopped working: %d", a.status)
	}
	newKey(t, gate, auth.KeySpec{Name: "second admin", Admin: true})
	if a := call(t, ts, "DELETE", "/v1/admin/keys/"+self, admin, ""); a.status != http.StatusOK {
		t.Fatalf("revoking self with another admin left: %d %v", a.status, a.body)
	}
}
