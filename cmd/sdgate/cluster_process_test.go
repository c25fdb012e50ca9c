package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sdgate/sdgate/internal/testsvc"
)

// A processCluster is `sdgate gateway`s and `sdgate worker`s as child
// processes of the test binary (real processes a test can SIGKILL) on an
// embedded nats-server, a real PostgreSQL and, when asked, a real Redis.
type processCluster struct {
	nats, dsn, key string
	gateways       []*child // gateways[i] listens on addrs[i]
	addrs          []string
	workers        []*child
}

type clusterSpec struct {
	redis      bool     // share cache and URL store in redis-server
	gateways   []string // extra gateway flags
	workerArgs []string // extra worker flags
}

// child is one sdgate process; its stderr goes to a file the test reads.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// log is what the process wrote to stderr so far.
func (c *child) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// startChild runs `sdgate args...` as a child; the test's cleanup stops it
// (SIGTERM, then SIGKILL) and logs its stderr when the test failed.
func startChild(t *testing.T, name string, args ...string) *child {
	t.Helper()
	for _, a := range args {
		if strings.ContainsAny(a, " \t\n") {
			t.Fatalf("child argument %q has a space: %s passes words", a, childServeEnv)
		}
	}
	c := &child{name: name, cmd: exec.Command(os.Args[0]), logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childServeEnv+"="+strings.Join(args, " "))
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	c.cmd.Stdout, c.cmd.Stderr = io.Discard, logFile
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", c.name, c.log())
		}
	})
	return c
}

// kill SIGKILLs the process and waits until it is gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", c.name, err)
	}
	<-c.exited
}

// startProcessCluster starts PostgreSQL (and Redis), creates one API key,
// and runs two workers and two gateways on the tiny model; it returns once
// both gateways list the model.
func startProcessCluster(t *testing.T, spec clusterSpec) *processCluster {
	t.Helper()
	models := tinyModels(t)
	testsvc.SkipWithoutPostgres(t)
	var redisAddr string
	if spec.redis {
		redisAddr = testsvc.StartRedis(t)
	}
	pg := testsvc.PostgresForTest(t)
	c := &processCluster{nats: embeddedNATS(t),
		// URL form: child arguments are passed as words.
		dsn: fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", pg.User, pg.Port)}
	var keyOut bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--postgres", c.dsn, "--name", "cluster"}, mapEnv(nil), &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	c.key = strings.TrimSpace(keyOut.String())
	for i := range 2 {
		id := fmt.Sprintf("w%d", i+1)
		args := append([]string{"worker", "--nats", c.nats, "--models", models, "--id", id, "--device", "cpu",
			"--cpu-threads", "1", "--heartbeat", "200ms", "--cold-grace", "300ms", "--ack-wait", "2s"}, spec.workerArgs...)
		c.workers = append(c.workers, startChild(t, id, args...))
	}
	for i := range 2 {
		addr := freeAddr(t)
		args := []string{"gateway", "--addr", addr, "--nats", c.nats, "--postgres", c.dsn, "--no-limits", "--log-level", "warn"}
		if spec.redis {
			args = append(args, "--redis", testsvc.RedisURL(redisAddr, 0))
		} else {
			args = append(args, "--cache-bytes", "-1")
		}
		c.addrs = append(c.addrs, addr)
		c.gateways = append(c.gateways, startChild(t, fmt.Sprintf("gateway%d", i+1), append(args, spec.gateways...)...))
	}
	for _, addr := range c.addrs {
		c.waitModel(t, addr, "tiny")
	}
	return c
}

// waitModel waits until the gateway at addr lists model (its workers'
// adverts reached it).
func (c *processCluster) waitModel(t *testing.T, addr, model string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/models/"+model, nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway %s never listed %s", addr, model)
}

// generate posts a generation to the gateway at addr and returns the
// response, its body and the first image's bytes (nil when none).
func (c *processCluster) generate(ctx context.Context, addr, body string) (*http.Response, []byte, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/images/generations", strings.NewReader(body))
	if err != nil {
		return nil, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, nil, err
	}
	var out struct {
		Data []struct {
			B64 []byte `json:"b64_json"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || len(out.Data) == 0 {
		return resp, raw, nil, nil
	}
	return resp, raw, out.Data[0].B64, nil
}

// usageRows counts the usage records of request id in PostgreSQL.
func (c *processCluster) usageRows(t *testing.T, ids ...string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT request_id, count(*) FROM usage WHERE request_id = ANY($1) GROUP BY request_id`, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}
