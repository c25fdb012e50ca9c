package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/internal/pngtext"
	"github.com/sdgate/sdgate/models/synth"
)

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyModels is a models dir holding the tiny preset as "tiny".
func tinyModels(t *testing.T) string {
	t.Helper()
	ortest.Library(t)
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "sdgate-cmd-test-")
		if tinyErr == nil {
			_, tinyErr = synth.Write(context.Background(), filepath.Join(tinyDir, "tiny"), synth.Options{Preset: "tiny"}, nil)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyDir
}

func TestMain(m *testing.M) {
	if args := os.Getenv(childServeEnv); args != "" {
		// A child process of the crash test: be sdgate, not the tests.
		if err := run(context.Background(), strings.Fields(args), os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

func TestGenerateWritesReproduciblePNGs(t *testing.T) {
	model := filepath.Join(tinyModels(t), "tiny")
	out := t.TempDir()
	gen := func(prefix string) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"generate", "--model", model, "--prompt", "a red fox", "--seed", "11",
			"--steps", "3", "--n", "2", "--size", "64x64", "--out", filepath.Join(out, prefix)}, mapEnv(nil), &stdout, &stderr)
		if err != nil {
			t.Fatalf("generate: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "seed=12") {
			t.Errorf("stdout %q does not report image 2's seed", stdout.String())
		}
	}
	gen("a")
	gen("b")
	for _, i := range []string{"1", "2"} {
		a, err := os.ReadFile(filepath.Join(out, "a-"+i+".png"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(out, "b-"+i+".png"))
		if !bytes.Equal(a, b) {
			t.Errorf("image %s differs between identical runs", i)
		}
		if _, err := png.Decode(bytes.NewReader(a)); err != nil {
			t.Errorf("image %s: %v", i, err)
		}
		texts, _ := pngtext.Read(a)
		if p := texts["parameters"]; !strings.HasPrefix(p, "a red fox\n") || !strings.Contains(p, "Steps: 3") {
			t.Errorf("parameters chunk %q", p)
		}
	}
}

func TestGenerateRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"generate"},
		{"generate", "--model", "x", "--seed", "-3"},
		{"generate", "--model", "x", "--size", "big"},
		{"generate", "--model", "x", "--guidance", "lots"},
		{"nope"},
	} {
		if err := run(context.Background(), args, mapEnv(nil), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "sdgate.json")
	os.WriteFile(cfg, []byte(`{"addr":"10.0.0.1:1","queue-size":3,"keep-alive":"9m","log-format":"json"}`), 0o644)
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--print-config", "--config", cfg, "--addr", "127.0.0.1:7"},
		mapEnv(map[string]string{"SDGATE_QUEUE_SIZE": "5"}), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"addr": "127.0.0.1:7 [flag]", "queue-size": "5 [env SDGATE_QUEUE_SIZE]", "keep-alive": "9m [config]",
		"log-format": "json [config]", "max-resident": "1 [default]", "requests-per-minute": "300 [default]",
		"images-per-minute": "60 [default]", "no-limits": "false [default]"}
	seen := 0
	for _, line := range strings.Split(out.String(), "\n") {
		name, rest, _ := strings.Cut(line, " ")
		if w, ok := want[name]; ok {
			seen++
			if got := strings.Join(strings.Fields(rest), " "); got != w {
				t.Errorf("%s = %q, want %q (flag > env > file > default)", name, got, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of %d settings in:\n%s", seen, len(want), out.String())
	}
	// "0 = automatic" settings print the value in effect.
	if !strings.Contains(out.String(), "(1/8 of RAM, at most 8 GiB)") || !strings.Contains(out.String(), "(one per core)") {
		t.Errorf("cache-bytes / cpu-threads print no effective value:\n%s", out.String())
	}
	os.WriteFile(cfg, []byte(`{"adr":"x"}`), 0o644)
	if err := run(context.Background(), []string{"serve", "--print-config", "--config", cfg}, mapEnv(nil), io.Discard, io.Discard); err == nil {
		t.Error("a misspelt setting was accepted")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A real `sdgate serve`: it answers, notifies systemd, and drains on cancel.
func TestServeAnswersAndDrains(t *testing.T) {
	models := tinyModels(t)
	addr := freeAddr(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	data := t.TempDir()
	var errOut bytes.Buffer
	err = run(context.Background(), []string{"serve", "--addr", addr, "--models", models, "--data", data}, mapEnv(nil), io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "keys create") {
		t.Fatalf("serve without any key: %v, want a refusal saying how to create one", err)
	}
	var keyOut bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--name", "test", "--data", data}, mapEnv(nil), &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(keyOut.String())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--models", models, "--data", data, "--log-level", "warn"},
			mapEnv(map[string]string{"NOTIFY_SOCKET": sock}), io.Discard, io.Discard)
	}()
	buf := make([]byte, 64)
	notify.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, _, err := notify.ReadFromUnix(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("sd_notify: %q, %v", buf[:n], err)
	}
	body := `{"model":"gpt-image-1","prompt":"a cat","size":"1024x1024","seed":3,"steps":2}`
	post := func(key string) *http.Response {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: status %d, want 401", resp.StatusCode)
	}
	resp := post(key)
	if resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("X-Cache = %q on the first request", resp.Header.Get("X-Cache"))
	}
	// A key created without limits gets the server's defaults, and OpenAI's
	// rate-limit headers with them.
	for name, want := range map[string]string{"x-ratelimit-limit-requests": "300", "x-ratelimit-remaining-requests": "299",
		"x-ratelimit-limit-images": "60", "x-ratelimit-remaining-images": "59"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if resp.Header.Get("x-ratelimit-reset-requests") == "" {
		t.Error("no x-ratelimit-reset-requests")
	}
	var out struct {
		Data []struct {
			B64  string `json:"b64_json"`
			Seed uint64 `json:"seed"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(out.Data) != 1 || out.Data[0].Seed != 3 || out.Data[0].B64 == "" {
		t.Fatalf("status %d, body %+v", resp.StatusCode, out)
	}
	again := post(key)
	again.Body.Close()
	if again.Header.Get("X-Cache") != "HIT" {
		t.Errorf("X-Cache = %q on the repeat of a seeded request", again.Header.Get("X-Cache"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after SIGTERM-style cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not drain")
	}
	if _, err := http.Get(fmt.Sprintf("http://%s/healthz", addr)); err == nil {
		t.Error("still answering after shutdown")
	}
}

func TestDefaultLimitsFlags(t *testing.T) {
	if got := (&keyFlags{defaultRPM: 7, defaultIPM: 2}).limits(); got != (auth.Limits{RequestsPerMinute: 7, ImagesPerMinute: 2}) {
		t.Errorf("defaultLimits = %+v", got)
	}
	if got := (&keyFlags{defaultRPM: 7, defaultIPM: 2, noLimits: true}).limits(); got != (auth.Limits{}) {
		t.Errorf("--no-limits kept %+v", got)
	}
	var log bytes.Buffer
	(&keyFlags{noLimits: true}).logLimits(slog.New(slog.NewTextHandler(&log, nil)))
	if !strings.Contains(log.String(), "rate limits off (--no-limits)") {
		t.Errorf("--no-limits is not said at start: %s", log.String())
	}
	_, _, err := openGate(context.Background(), serveFlags{keys: keyFlags{defaultRPM: -1}, dataDir: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("negative default: %v", err)
	}
}
