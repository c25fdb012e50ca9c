package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
)

// brokenAdmin is a ModelAdmin whose one model failed to load.
type brokenAdmin struct{ retryAt time.Time }

func (brokenAdmin) Rescan() error      { return nil }
func (brokenAdmin) Loaded(string) bool { return false }
func (a brokenAdmin) Broken() []models.Broken {
	return []models.Broken{{ID: "sd-tiny", Err: fmt.Errorf("%w: %w", models.ErrModelBroken, errSecret), Load: true, RetryAt: a.retryAt}}
}

func TestBrokenModelAnswers503(t *testing.T) {
	gen := newFakeGenerator()
	retryAt := time.Now().Add(30 * time.Second)
	gen.fail(&models.ModelBrokenError{ID: "sd-tiny", Err: errSecret, RetryAt: retryAt})
	ts, _, admin := authServer(t, func(o *Options) { o.Admin = brokenAdmin{retryAt: retryAt} })
	ts2 := startServer(t, gen)
	a := call(t, ts2, "POST", "/v1/images/generations", "", `{"model":"sd-tiny","prompt":"x"}`)
	_, code, msg := errorOf(a)
	if a.status != http.StatusServiceUnavailable || code != "model_unavailable" {
		t.Fatalf("broken model: %d %s, want 503 model_unavailable", a.status, code)
	}
	if !strings.Contains(msg, "'sd-tiny'") || strings.Contains(msg, "secret") {
		t.Errorf("message %q: want the model named and the cause kept for the admin", msg)
	}
	if s, _ := strconv.Atoi(a.header.Get("Retry-After")); s < 25 || s > 31 {
		t.Errorf("Retry-After %q, want about 30", a.header.Get("Retry-After"))
	}

	list := call(t, ts, "GET", "/v1/admin/models", admin, "")
	broken, _ := list.body["broken"].([]any)
	if len(broken) != 1 {
		t.Fatalf("admin listing broken = %v", list.body["broken"])
	}
	b := broken[0].(map[string]any)
	if b["id"] != "sd-tiny" || b["stage"] != "load" || b["retry_at"] == nil || !strings.Contains(b["error"].(string), "secret detail") {
		t.Errorf("broken entry %v: want sd-tiny, stage load, retry_at and the cause", b)
	}
}
