package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
)

// Finding 3: a model corrupted after validation is marked broken, answers
// 503 naming it, shows in the admin listing and /metrics, and comes back
// once its files are repaired; the other model serves throughout.
func TestProbeCorruptModel(t *testing.T) {
	s := newStack(t, stackOptions{})
	unet := filepath.Join(s.dir, "beta", "unet", "model.onnx")
	if err := os.WriteFile(unet, []byte("\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := s.json(t, "/v1/images/generations", s.admin, `{"model":"beta","prompt":"x"}`)
	check(t, "generation on a model whose unet was corrupted after validation", "503 model_unavailable naming it, Retry-After",
		a.String(), a.status == 503 && a.code() == "model_unavailable" && strings.Contains(string(a.body), "'beta'") && a.header.Get("Retry-After") != "")
	a = s.json(t, "/v1/images/generations", s.admin, `{"model":"beta","prompt":"x"}`)
	check(t, "the same again, within the back-off", "503 <50ms, no reload", a.String(), a.status == 503 && a.took < 50*time.Millisecond)
	other := s.json(t, "/v1/images/generations", s.admin, `{"model":"alpha","prompt":"x"}`)
	check(t, "the other model meanwhile", "200", other.String(), other.status == 200)
	list := s.do(t, "GET", "/v1/admin/models", s.admin, "", nil)
	check(t, "admin listing", `broken: beta, stage load, with the reason`, fmt.Sprintf("%d, has reason %v", list.status, strings.Contains(string(list.body), "protobuf")),
		list.status == 200 && strings.Contains(string(list.body), `"stage":"load"`) && strings.Contains(string(list.body), "protobuf parsing failed"))
	m := s.do(t, "GET", "/metrics", s.admin, "", nil)
	check(t, "/metrics", "sdgate_models_broken 1", fmt.Sprintf("%d, gauge present %v", m.status, strings.Contains(string(m.body), "sdgate_models_broken 1")),
		m.status == 200 && strings.Contains(string(m.body), "sdgate_models_broken 1"))
	if err := os.WriteFile(unet, []byte("ok repaired weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	a = s.json(t, "/v1/images/generations", s.admin, `{"model":"beta","prompt":"x"}`)
	check(t, "after the files are repaired, no rescan", "200", a.String(), a.status == 200)
	tally("faults", 1)
}

// Finding 4: a store that cannot write makes the server unready and
// refuses image requests before any GPU work; it recovers by itself.
func TestProbeUnwritableStore(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.store.broken.Store(true)
	time.Sleep(auth.DefaultProbeTTL + 50*time.Millisecond) // the last good probe expires
	ready := s.do(t, "GET", "/readyz", "", "", nil)
	check(t, "/readyz with a read-only store", "503", ready.String(), ready.status == 503)
	before := s.runs.Load()
	a := s.json(t, "/v1/images/generations", s.admin, `{"model":"alpha","prompt":"x"}`)
	check(t, "generation with a read-only store", "503 usage_store_unavailable, Retry-After, no GPU work",
		fmt.Sprintf("%s, Retry-After %s, runs %d", a, a.header.Get("Retry-After"), s.runs.Load()-before),
		a.status == 503 && a.code() == "usage_store_unavailable" && a.header.Get("Retry-After") != "" && s.runs.Load() == before)
	s.store.broken.Store(false)
	time.Sleep(auth.DefaultProbeTTL + 50*time.Millisecond)
	ready = s.do(t, "GET", "/readyz", "", "", nil)
	a = s.json(t, "/v1/images/generations", s.admin, `{"model":"alpha","prompt":"x"}`)
	check(t, "after the store recovers, no restart", "readyz 200, generation 200", fmt.Sprintf("readyz %d, generation %d", ready.status, a.status),
		ready.status == 200 && a.status == 200)
	tally("faults", 1)
}

// A burst bigger than the queue: every answer is 200 or 429, never 5xx,
// and every request left exactly one usage record.
func TestProbeBurst(t *testing.T) {
	s := newStack(t, stackOptions{delay: 5 * time.Millisecond, queue: 16, maxConns: 4096, perAddr: 4096})
	key := s.key(t, auth.KeySpec{Name: "burst"})
	n := scale(200, 1000)
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			a := s.json(t, "/v1/images/generations", key, `{"model":"alpha","prompt":"burst"}`)
			mu.Lock()
			statuses[a.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	days, err := s.gate.Usage(context.Background(), nil, "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var recorded int64
	for _, d := range days {
		if d.KeyID != "" {
			recorded += d.Requests
		}
	}
	tally("burst requests", n)
	tally("records lost", max(0, statuses[200]-int(recorded)))
	fivexx := 0
	for code, c := range statuses {
		if code >= 500 || code < 0 {
			fivexx += c
		}
	}
	// Refusals at admission (429 before a usage record) are not metered;
	// the ones that ran are, each exactly once.
	check(t, fmt.Sprintf("burst of %d concurrent generations, queue 16", n), "0 5xx, one usage record per 200",
		fmt.Sprintf("%v in %s, %d records", statuses, took.Round(time.Millisecond), recorded),
		fivexx == 0 && int(recorded) >= statuses[200] && statuses[200]+statuses[429] == n)
}
