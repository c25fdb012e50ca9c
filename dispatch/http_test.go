package dispatch

import (
	"github.com/sdgate/sdgate/internal/authtest"

	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/sd/spec"
	"github.com/sdgate/sdgate/server"
)

// httpGateway serves the HTTP API over a Gateway with a real Gate on a
// SQLite store, as `sdgate gateway` does over PostgreSQL.
func httpGateway(t *testing.T, g *Gateway) (*httptest.Server, *auth.SQLiteStore, string, string) {
	t.Helper()
	gate, store := authtest.Gate(t, auth.Options{})
	secret, key, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(g, server.Options{Gate: gate, RetryAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, store, secret, key.ID
}

func post(t *testing.T, ts *httptest.Server, secret, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestRedeliveredJobIsMeteredOnceThroughHTTP(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	first := slow(registry(t, dir), 50*time.Millisecond)
	_, nc1, _ := startWorker(t, n, first, WorkerOptions{ID: "doomed"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "tiny"))
	ts, store, secret, keyID := httpGateway(t, g)

	go func() { <-first.started; nc1.Close() }()
	go func() {
		<-first.started
		startWorker(t, n, registry(t, dir), WorkerOptions{ID: "rescuer"})
	}()
	resp, body := post(t, ts, secret, `{"model":"tiny","prompt":"metered","size":"64x64","steps":8,"response_format":"b64_json"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	if data, _ := body["data"].([]any); len(data) != 1 {
		t.Fatalf("data = %v", body["data"])
	}
	var days []auth.DayUsage
	waitFor(t, "the usage record", func() bool {
		days, _ = store.UsageByDay(context.Background(), keyID, time.Now().Add(-48*time.Hour))
		return len(days) > 0
	})
	if len(days) != 1 || days[0].Requests != 1 || days[0].Images != 1 {
		t.Errorf("usage %+v, want one request with one image", days)
	}
}

func TestHTTPAnswersForNoWorkerAndFullQueue(t *testing.T) {
	n := startNATS(t)
	g := startGateway(t, n, GatewayOptions{})
	ts, _, secret, _ := httpGateway(t, g)

	fakeAdvert(t, n, "m", QueueConfig{MaxQueue: 1})
	waitFor(t, "the advert", served(g, "m"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Generate(ctx, "m", spec.Request{Prompt: "queued"})
	waitFor(t, "a queued job", func() bool { return streamMsgs(t, n, "m") == 1 })
	resp, body := post(t, ts, secret, `{"model":"m","prompt":"x","size":"64x64"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// The only worker leaves: the model still resolves, and the answer is
	// 503 with a code that says why.
	withdraw(t, n, "idle")
	waitFor(t, "the advert to go", func() bool { return len(g.Models()) == 0 })
	resp, body = post(t, ts, secret, `{"model":"m","prompt":"x","size":"64x64"}`)
	errBody, _ := body["error"].(map[string]any)
	if resp.StatusCode != http.StatusServiceUnavailable || errBody["code"] != "no_worker_available" {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
}
