// Package servetest drives a real `sdgate serve` process from tests (the
// crash test of cmd/sdgate, the signal probes of internal/reliability):
// waiting for it to answer, bursts of generations against it, and the
// usage rows it left on disk.
package servetest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read the usage table as it is on disk

	"github.com/sdgate/sdgate/auth"
)

// WaitHealthy waits up to within for /healthz on addr to answer.
func WaitHealthy(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server on %s did not come up within %s", addr, within)
}

// Answer is one generation as its client saw it.
type Answer struct {
	Status    int    // -1: no answer (the connection failed)
	RequestID string // X-Request-Id
	Images    bool   // the body holds b64_json images
	Err       error
	Done      time.Time
}

// OK is a 200 that delivered images: the request must be metered.
func (a Answer) OK() bool { return a.Status == http.StatusOK && a.Images }

// Generate posts one JSON generation body to addr with key. wrote, when
// not nil, is closed once the request is written (the server has it).
func Generate(ctx context.Context, client *http.Client, addr, key, body string, wrote chan<- struct{}) Answer {
	if wrote != nil {
		var once sync.Once
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) }})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/images/generations", strings.NewReader(body))
	if err != nil {
		return Answer{Status: -1, Err: err, Done: time.Now()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return Answer{Status: -1, Err: err, Done: time.Now()}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return Answer{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"), Err: err,
		Images: err == nil && bytes.Contains(out, []byte(`"b64_json"`)), Done: time.Now()}
}

// Burst is workers posting generations back to back until Stop or until
// the server goes away.
type Burst struct {
	mu      sync.Mutex
	ok      []string // request ids answered 200 with images
	byCode  map[int]int
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// StartBurst starts workers; body gives worker w's i-th request body.
func StartBurst(addr, key string, workers int, body func(w, i int) string) *Burst {
	b := &Burst{byCode: map[int]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Minute}
	for w := range workers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-b.stop:
					return
				default:
				}
				a := Generate(context.Background(), client, addr, key, body(w, i), nil)
				b.mu.Lock()
				b.byCode[a.Status]++
				if a.OK() {
					b.ok = append(b.ok, a.RequestID)
				}
				b.mu.Unlock()
				switch {
				case a.Status < 0:
					return // the server is gone
				case a.Status == http.StatusTooManyRequests || a.Status >= 500:
					time.Sleep(20 * time.Millisecond) // no tight loop on a refusing server
				}
			}
		}()
	}
	return b
}

// Succeeded is how many requests were answered 200 with images so far.
func (b *Burst) Succeeded() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ok)
}

// WaitSucceeded waits until n requests succeeded or within passed.
func (b *Burst) WaitSucceeded(n int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for b.Succeeded() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return b.Succeeded()
}

// Stop waits for the workers and returns the ids answered 200 with images
// and the count of answers per status (-1: connection failed).
func (b *Burst) Stop() (ok []string, byCode map[int]int) {
	b.stopped.Do(func() { close(b.stop) })
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ok...), b.byCode
}

// MeteredOK reads the request ids metered with status 200 from the usage
// table of the SQLite store in dataDir, as it is on disk.
func MeteredOK(dataDir string) (map[string]bool, error) {
	db, err := sql.Open("sqlite", filepath.Join(dataDir, auth.DBName)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT request_id FROM usage WHERE status = 200`)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// Unmetered is the ids among ok that metered lacks.
func Unmetered(ok []string, metered map[string]bool) []string {
	var lost []string
	for _, id := range ok {
		if !metered[id] {
			lost = append(lost, id)
		}
	}
	return lost
}
