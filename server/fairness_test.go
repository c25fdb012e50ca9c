package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
)

// One key's backlog cannot starve another key: the other key's request
// runs next, and the first key cannot take more than its share of the queue.
func TestQueueFairnessAcrossKeys(t *testing.T) {
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, _ := auth.New(store, auth.Options{})
	keyA, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "a"})
	keyB, _, _ := gate.CreateKey(context.Background(), auth.KeySpec{Name: "b"})
	ts, _, q := queuedServer(t, 6, 150*time.Millisecond, func(o *Options) { o.Gate = gate })

	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	send := func(name, key string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"sd-tiny","prompt":%q}`, name)
			if err := post(context.Background(), http.DefaultClient, ts.URL, key, body); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
	}
	send("a1", keyA)
	waitRunning(t, q)
	for i, name := range []string{"a2", "a3", "a4"} {
		send(name, keyA)
		waitDepth(t, q, i+1)
	}
	// a holds its share (3 of 6 waiting slots): a fifth is refused...
	req, _ := http.NewRequest("POST", ts.URL+"/v1/images/generations", strings.NewReader(`{"model":"sd-tiny","prompt":"a5"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(msg), "share") {
		t.Errorf("a5: %d %s, want 429 for a's share", resp.StatusCode, msg)
	}
	// ...while b still gets in, and runs before a's backlog.
	send("b1", keyB)
	wg.Wait()
	if got := fmt.Sprint(order); got != "[a1 b1 a2 a3 a4]" {
		t.Errorf("completion order %s, want b1 right after the running a1", got)
	}
}

func waitRunning(t *testing.T, q interface{ Busy() bool }) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !q.Busy() {
		if time.Now().After(deadline) {
			t.Fatal("nothing started")
		}
		time.Sleep(time.Millisecond)
	}
}

func waitDepth(t *testing.T, q interface{ Depth() int }, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.Depth() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d, want %d", q.Depth(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
