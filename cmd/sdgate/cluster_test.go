package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sdgate/sdgate/internal/testsvc"
)

// embeddedNATS is a real nats-server with JetStream in the test process.
func embeddedNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// Two `sdgate gateway`s and one `sdgate worker` on real NATS and
// PostgreSQL: either gateway serves, and all stop cleanly.
func TestGatewaysAndWorkerServeTogether(t *testing.T) {
	models := tinyModels(t)
	pg := testsvc.PostgresForTest(t)
	natsURL := embeddedNATS(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 3)
	go func() {
		done <- run(ctx, []string{"worker", "--nats", natsURL, "--models", models, "--id", "w1", "--device", "cpu",
			"--heartbeat", "200ms", "--cold-grace", "10ms", "--log-level", "warn"}, mapEnv(nil), io.Discard, io.Discard)
	}()
	addrs := []string{freeAddr(t), freeAddr(t)}
	// The gateway listens like serve does: its hardening flags apply (one
	// gateway answers /metrics on a separate address, without a key).
	metricsAddr := freeAddr(t)
	for i, addr := range addrs {
		args := []string{"gateway", "--addr", addr, "--nats", natsURL, "--postgres", pg.DSN("postgres"),
			"--no-auth", "--cache-bytes", "-1", "--log-level", "warn", "--max-conns-per-ip", "32"}
		if i == 0 {
			args = append(args, "--metrics-addr", metricsAddr)
		}
		go func() { done <- run(ctx, args, mapEnv(nil), io.Discard, io.Discard) }()
	}
	for i, addr := range addrs {
		var status int
		var body string
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Post("http://"+addr+"/v1/images/generations", "application/json",
				strings.NewReader(`{"model":"dall-e-2","prompt":"a cat","size":"256x256","seed":3,"steps":2,"response_format":"b64_json"}`))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, body = resp.StatusCode, string(b)
				if status == http.StatusOK {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		var out struct {
			Data []struct {
				B64 string `json:"b64_json"`
			} `json:"data"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || len(out.Data) != 1 || out.Data[0].B64 == "" {
			t.Fatalf("gateway %d: status %d, body %.300s", i, status, body)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), "sdgate_") {
		t.Errorf("gateway --metrics-addr: status %d, %.200s", resp.StatusCode, metrics)
	}
	cancel()
	for range 3 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("a process returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a process did not stop")
		}
	}
}
