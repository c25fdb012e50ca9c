package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read the usage table as it is on disk

	"github.com/sdgate/sdgate/auth"
)

// childServeEnv makes the test binary run `sdgate <args>` instead of the
// tests: the crash test's server is a real process it can SIGKILL.
const childServeEnv = "SDGATE_TEST_CHILD_ARGS"

func startChildServe(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childServeEnv+"="+strings.Join(args, " "))
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not come up")
}

// Kill -9 a serving process under load; every request a client saw succeed
// must be in the usage table afterwards, and the restarted server reports it.
func TestCrashLosesNoMeteredRequest(t *testing.T) {
	models := tinyModels(t)
	data := t.TempDir()
	var keyOut bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--name", "crash", "--admin", "--data", data}, mapEnv(nil), &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(keyOut.String())
	addr := freeAddr(t)
	args := []string{"serve", "--addr", addr, "--models", models, "--data", data, "--log-level", "error", "--cache-bytes", "-1", "--queue-size", "64"}
	child := startChildServe(t, args...)
	waitHealthy(t, addr)

	var (
		mu   sync.Mutex
		seen []string // request ids answered 200 with images
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"dall-e-2","prompt":"crash %d","size":"256x256","response_format":"b64_json","seed":%d,"steps":1}`, w, 1000*w+i)
				req, _ := http.NewRequest("POST", "http://"+addr+"/v1/images/generations", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				out, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && bytes.Contains(out, []byte(`"b64_json"`)) {
					mu.Lock()
					seen = append(seen, resp.Header.Get("X-Request-Id"))
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 20 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	close(stop)
	wg.Wait()
	if len(seen) < 5 {
		t.Fatalf("only %d requests succeeded before the kill", len(seen))
	}

	db, err := sql.Open("sqlite", filepath.Join(data, auth.DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recorded := map[string]bool{}
	rows, err := db.Query(`SELECT request_id FROM usage WHERE status = 200`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		recorded[id] = true
	}
	rows.Close()
	for _, id := range seen {
		if !recorded[id] {
			t.Errorf("request %s succeeded for the client but is not metered", id)
		}
	}
	t.Logf("%d successes seen by clients, %d metered successes on disk", len(seen), len(recorded))

	// The restarted server serves the same usage.
	child = startChildServe(t, args...)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	waitHealthy(t, addr)
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"images":`)) {
		t.Errorf("usage after restart: %d %s", resp.StatusCode, body)
	}
}
