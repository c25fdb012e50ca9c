package reliability

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/servetest"
)

// The signal probes run the real binary: main's signal handling and
// serve's drain are the code under test. It is built once, on first use,
// so the rest of the suite needs no cgo.
var realBinary struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	skip string // why the probes cannot run here
	err  error
}

// sdgateBinary builds cmd/sdgate and checks that it finds ONNX Runtime;
// the probe skips (saying how to fix that) where either cannot be had.
func sdgateBinary(t *testing.T) string {
	t.Helper()
	realBinary.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			realBinary.skip = "no go tool on PATH to build cmd/sdgate"
			return
		}
		if realBinary.dir, realBinary.err = os.MkdirTemp("", "sdgate-reliability-"); realBinary.err != nil {
			return
		}
		realBinary.path = filepath.Join(realBinary.dir, "sdgate")
		build := exec.Command(goTool, "build", "-o", realBinary.path, "github.com/sdgate/sdgate/cmd/sdgate")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			realBinary.err = errors.New("go build ./cmd/sdgate: " + err.Error() + "\n" + string(out))
			return
		}
		// The binary looks for lib/ upwards of its working directory (ours).
		if out, err := exec.Command(realBinary.path, "version").CombinedOutput(); err != nil {
			realBinary.skip = "no ONNX Runtime library (run make deps): " + strings.TrimSpace(string(out))
		}
	})
	if realBinary.err != nil {
		t.Fatal(realBinary.err)
	}
	if realBinary.skip != "" {
		t.Skip(realBinary.skip)
	}
	return realBinary.path
}

// realServe is a `sdgate serve` process on the tiny synthesized model,
// with an admin key, on a loopback port.
type realServe struct {
	bin, models, data, addr, key string
	args                         []string
	cmd                          *exec.Cmd
	exited                       chan struct{}
	exitErr                      error
	stderr                       string // the child's stderr file
}

func newRealServe(t *testing.T, extra ...string) *realServe {
	t.Helper()
	r := &realServe{bin: sdgateBinary(t), models: t.TempDir(), data: t.TempDir()}
	if out, err := exec.Command(r.bin, "synth", "--preset", "tiny", "--out", filepath.Join(r.models, "tiny")).CombinedOutput(); err != nil {
		t.Fatalf("synth: %v\n%s", err, out)
	}
	out, err := exec.Command(r.bin, "keys", "create", "--name", "probe", "--admin", "--data", r.data).Output()
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	r.key = strings.TrimSpace(string(out))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ln.Close()
	r.args = append([]string{"serve", "--addr", r.addr, "--models", r.models, "--data", r.data,
		"--log-level", "error", "--cache-bytes", "-1", "--queue-size", "64", "--no-limits"}, extra...)
	return r
}

// start runs the server and waits until it answers.
func (r *realServe) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	r.stderr = filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(r.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child holds its own descriptor
	r.cmd.Stderr = f
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	cmd, exited := r.cmd, r.exited
	go func() { r.exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	servetest.WaitHealthy(t, r.addr, 60*time.Second)
}

// signal sends sig and waits up to within for the process to exit; ok is
// false when it was still running then.
func (r *realServe) signal(sig syscall.Signal, within time.Duration) (took time.Duration, exitErr error, ok bool) {
	start := time.Now()
	r.cmd.Process.Signal(sig)
	select {
	case <-r.exited:
		return time.Since(start), r.exitErr, true
	case <-time.After(within):
		return time.Since(start), nil, false
	}
}

// generation is a request body for the tiny model.
func (r *realServe) generation(tag string, seed int, size string, steps int) string {
	return `{"model":"dall-e-2","prompt":"` + tag + `","size":"` + size + `","response_format":"b64_json","seed":` +
		strconv.Itoa(seed) + `,"steps":` + strconv.Itoa(steps) + `}`
}

// refusedWithin dials addr every 5ms until a connection is refused (the
// listener is closed) or within passes; a connection that does open is
// closed at once so it holds no drain. It returns when refusal came.
func refusedWithin(ctx context.Context, addr string, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < within && ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return time.Since(start), true
			}
		} else {
			c.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), false
}

// stderrText is the start of the child's stderr (the last run's).
func (r *realServe) stderrText() string {
	data, _ := os.ReadFile(r.stderr)
	return string(data[:min(len(data), 64<<10)])
}
