package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/sd/spec"
)

// blockingGenerator holds seed 1's generation until released (ignoring ctx,
// as a GPU step in flight would) and panics when told to.
type blockingGenerator struct {
	*fakeGenerator
	started chan struct{}
	release chan struct{}
	once    sync.Once
	panics  bool
}

func (g *blockingGenerator) Generate(ctx context.Context, id string, req spec.Request) (spec.Result, error) {
	if g.panics {
		panic("generator exploded")
	}
	if req.Seed == 1 {
		g.once.Do(func() { close(g.started) })
		<-g.release
	}
	return spec.Result{Images: []spec.Image{{Image: drawSeed(64, 64, req.Seed), Seed: req.Seed}},
		Total: time.Millisecond, StepsRun: 3, ModelLoad: 5 * time.Millisecond}, nil
}

func postGeneration(ctx context.Context, url, body, key string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return http.DefaultClient.Do(req)
}

// The request that started a cached computation leaves; a coalesced waiter
// keeps it running. The computation must not write into the leaver's
// (recycled) request: -race catches it if it does.
func TestLeaderLeavingDoesNotTouchRecycledRequests(t *testing.T) {
	g := &blockingGenerator{fakeGenerator: newFakeGenerator(), started: make(chan struct{}), release: make(chan struct{})}
	mem, _ := cache.NewMemory(64 << 20)
	c, _ := cache.New(mem, cache.Options{})
	ts := startServer(t, g, func(o *Options) { o.Cache = c })
	body := `{"model":"sd-tiny","prompt":"x","seed":1,"response_format":"b64_json"}`

	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() {
		defer close(doneA)
		if resp, err := postGeneration(ctxA, ts.URL, body, ""); err == nil {
			resp.Body.Close()
		}
	}()
	<-g.started
	statusB := make(chan int, 1)
	go func() {
		resp, err := postGeneration(context.Background(), ts.URL, body, "")
		if err != nil {
			statusB <- -1
			return
		}
		resp.Body.Close()
		statusB <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // B joins the flight
	cancelA()
	<-doneA
	var wg sync.WaitGroup
	for range 4 { // these reuse A's pooled context
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := postGeneration(context.Background(), ts.URL, `{"model":"sd-tiny","prompt":"y","seed":7}`, ""); err == nil {
				resp.Body.Close()
			}
		}()
	}
	close(g.release)
	wg.Wait()
	if s := <-statusB; s != http.StatusOK {
		t.Errorf("the waiter got %d, want 200", s)
	}
}

// A panicking generator answers 500 and still settles the admission: the
// reserved images go back, so a 2-image quota does not run dry on failures.
func TestPanicReleasesTheQuotaReservation(t *testing.T) {
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, _ := auth.New(store, auth.Options{})
	key, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "q", Limits: auth.Limits{ImageQuota: 2}})
	g := &blockingGenerator{fakeGenerator: newFakeGenerator(), panics: true}
	ts := startServer(t, g, func(o *Options) { o.Gate = gate })
	for i := range 3 {
		resp, err := postGeneration(context.Background(), ts.URL, `{"model":"sd-tiny","prompt":"x","n":1}`, key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("request %d: %d, want 500 (a leaked reservation answers 429)", i, resp.StatusCode)
		}
	}
	usage := call(t, ts, "GET", "/v1/usage", key, "")
	day := usage.body["data"].([]any)[0].(map[string]any)
	if day["requests"].(float64) != 3 || day["failed"].(float64) != 3 {
		t.Errorf("usage %v, want 3 failed requests metered", day)
	}
}
