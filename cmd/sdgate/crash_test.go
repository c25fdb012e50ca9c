package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/servetest"
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
	servetest.WaitHealthy(t, addr, 30*time.Second)

	burst := servetest.StartBurst(addr, key, 6, func(w, i int) string {
		return fmt.Sprintf(`{"model":"dall-e-2","prompt":"crash %d","size":"256x256","response_format":"b64_json","seed":%d,"steps":1}`, w, 1000*w+i)
	})
	burst.WaitSucceeded(20, 20*time.Second)
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	seen, _ := burst.Stop()
	if len(seen) < 5 {
		t.Fatalf("only %d requests succeeded before the kill", len(seen))
	}
	recorded, err := servetest.MeteredOK(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range servetest.Unmetered(seen, recorded) {
		t.Errorf("request %s succeeded for the client but is not metered", id)
	}
	t.Logf("%d successes seen by clients, %d metered successes on disk", len(seen), len(recorded))

	// The restarted server serves the same usage.
	child = startChildServe(t, args...)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	servetest.WaitHealthy(t, addr, 30*time.Second)
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
