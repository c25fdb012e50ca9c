package dispatch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/internal/testsvc"
	"github.com/sdgate/sdgate/server"
)

// With its PostgreSQL gone, a gateway refuses with a clear 503 and
// Retry-After before any job is published: nothing runs that could not be
// metered.
func TestPostgresUnreachableRefusesBeforeAnyJob(t *testing.T) {
	pg := testsvc.PostgresForTest(t)
	ctx := context.Background()
	store, err := auth.OpenPostgres(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, err := auth.New(store, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := gate.CreateKey(ctx, auth.KeySpec{Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	n := startNATS(t)
	g := startGateway(t, n, GatewayOptions{})
	fakeAdvert(t, n, "m", QueueConfig{MaxQueue: 4})
	waitFor(t, "the advert", served(g, "m"))
	srv, err := server.New(g, server.Options{Gate: gate, RetryAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, ts, secret, `{"model":"m","prompt":"x","size":"64x64"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if e, _ := body["error"].(map[string]any); e["code"] == nil || e["code"] == "" {
		t.Errorf("the 503 names no code: %v", body)
	}
	if got := streamMsgs(t, n, "m"); got != 0 {
		t.Errorf("%d jobs published for a request that could not be metered", got)
	}
}
