package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/auth"
)

// Finding 5: what a caller may do and see.
func TestProbeAccess(t *testing.T) {
	s := newStack(t, stackOptions{})
	keys, err := s.gate.ListKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	a := s.do(t, "DELETE", "/v1/admin/keys/"+keys[0].ID, s.admin, "", nil)
	check(t, "the last admin key revokes itself over HTTP", "409 last_admin_key", a.String(), a.status == 409 && a.code() == "last_admin_key")

	user := s.key(t, auth.KeySpec{Name: "beta only", Models: []string{"beta"}})
	m := s.do(t, "GET", "/metrics", "", "", nil)
	mu := s.do(t, "GET", "/metrics", user, "", nil)
	check(t, "/metrics without a key, with a user key", "401, 403", fmt.Sprintf("%d, %d", m.status, mu.status), m.status == 401 && mu.status == 403)

	list := s.do(t, "GET", "/v1/models", user, "", nil)
	check(t, "/v1/models for a key restricted to beta", "only beta listed", fmt.Sprintf("%d %s", list.status, ids(string(list.body))),
		list.status == 200 && ids(string(list.body)) == "beta")
	a = s.json(t, "/v1/images/generations", user, `{"model":"dall-e-2","prompt":"x"}`)
	check(t, "that key asks dall-e-2 (an alias of alpha)", "404 without naming alpha", a.String(),
		a.status == 404 && !strings.Contains(string(a.body), "alpha"))

	a = s.json(t, "/v1/images/generations", s.admin, `{"model":"alpha","prompt":"x","response_format":"url"}`, "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https")
	check(t, "X-Forwarded-Host from a client that is no trusted proxy", "image URL on our own host", a.String()+urlHost(string(a.body)),
		a.status == 200 && strings.Contains(string(a.body), s.url) && !strings.Contains(string(a.body), "evil.example"))
}

// ids lists the "id" values of a model list, comma-separated.
func ids(body string) string {
	var out []string
	for _, part := range strings.Split(body, `"id":"`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return strings.Join(out, ",")
}

func urlHost(body string) string {
	i := strings.Index(body, `"url":"`)
	if i < 0 {
		return ""
	}
	rest := body[i+7:]
	rest = rest[:strings.IndexByte(rest, '"')]
	if j := strings.Index(rest, "/v1/"); j > 0 {
		rest = rest[:j]
	}
	return ", url on " + rest
}
