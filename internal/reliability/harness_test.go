package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/internal/connlimit"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
	"github.com/sdgate/sdgate/server"
)

var chaos = flag.Bool("chaos", false, "heavier loads, and print the probe table (make chaos)")

// table collects every probe's outcome for the chaos report.
var table struct {
	mu     sync.Mutex
	rows   []row
	totals map[string]int // summary counters (tally)
}

// tally adds n to a summary line of the chaos report.
func tally(name string, n int) {
	table.mu.Lock()
	defer table.mu.Unlock()
	if table.totals == nil {
		table.totals = map[string]int{}
	}
	table.totals[name] += n
}

type row struct {
	probe, expected, observed string
	pass                      bool
}

// check records a probe and fails the test when it did not pass.
func check(t *testing.T, probe, expected, observed string, pass bool) {
	t.Helper()
	table.mu.Lock()
	table.rows = append(table.rows, row{probe, expected, observed, pass})
	table.mu.Unlock()
	if !pass {
		t.Errorf("%s: expected %s, observed %s", probe, expected, observed)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if realBinary.dir != "" {
		os.RemoveAll(realBinary.dir)
	}
	if *chaos {
		w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PROBE\tEXPECTED\tOBSERVED\tPASS")
		failed := 0
		for _, r := range table.rows {
			mark := "yes"
			if !r.pass {
				mark, failed = "NO", failed+1
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.probe, r.expected, r.observed, mark)
		}
		w.Flush()
		fmt.Printf("%d probes, %d failed\n", len(table.rows), failed)
		t := table.totals
		fmt.Printf("load held: %d requests in bursts, %d idle connections; faults survived: %d; bad inputs tried: %d; records lost: %d\n",
			t["burst requests"], t["idle connections"], t["faults"], t["bad inputs"], t["records lost"])
	}
	os.Exit(code)
}

// scale is n, or heavy under -chaos.
func scale(n, heavy int) int {
	if *chaos {
		return heavy
	}
	return n
}

// rssBytes is this process's resident set now (0 where /proc is absent).
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// peakRSS runs f and reports how far the resident set rose above where it
// started, sampled every 2ms.
func peakRSS(f func()) int64 {
	runtime.GC()
	base := rssBytes()
	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := rssBytes(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load() - base
}

func mb(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
}

// stubPipeline is the one stand-in: it loads by reading its unet file (so
// a corrupt file fails the load, as ONNX Runtime's parser would) and
// generates flat images at the asked size after delay.
type stubPipeline struct {
	dir   string
	delay time.Duration
	runs  *atomic.Int64
	mu    sync.Mutex
	on    bool
}

var errBadProto = errors.New("protobuf parsing failed")

func (p *stubPipeline) Spec() spec.Model {
	return spec.Model{NativeWidth: 64, NativeHeight: 64, DefaultSteps: 2, Scheduler: "EulerDiscreteScheduler", CanEncode: true, MaxTokens: 77}
}
func (p *stubPipeline) Dir() string                 { return p.dir }
func (p *stubPipeline) Validate(spec.Request) error { return nil }
func (p *stubPipeline) Tokens(text string) int      { return len(strings.Fields(text)) }
func (p *stubPipeline) Loaded() bool                { p.mu.Lock(); defer p.mu.Unlock(); return p.on }
func (p *stubPipeline) Close() error                { p.mu.Lock(); defer p.mu.Unlock(); p.on = false; return nil }

func (p *stubPipeline) Load(context.Context) error {
	data, err := os.ReadFile(filepath.Join(p.dir, "unet", "model.onnx"))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(data), "ok") {
		return fmt.Errorf("%s: %w", filepath.Join(p.dir, "unet", "model.onnx"), errBadProto)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = true
	return nil
}

func (p *stubPipeline) Generate(ctx context.Context, req spec.Request) (spec.Result, error) {
	p.runs.Add(1)
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return spec.Result{}, ctx.Err()
	}
	w, h, n := cmpOr(req.Width, 64), cmpOr(req.Height, 64), cmpOr(req.N, 1)
	res := spec.Result{Width: w, Height: h, StepsRun: 2, Total: p.delay}
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for j := range img.Pix {
			img.Pix[j] = byte(i * 40)
		}
		img.Set(0, 0, color.RGBA{1, 2, 3, 255})
		res.Images = append(res.Images, spec.Image{Image: img, Seed: req.Seed + uint64(i)})
	}
	return res, nil
}

func cmpOr(v, fallback int) int {
	if v > 0 {
		return v
	}
	return fallback
}

// stack is the real serving stack on a loopback port.
type stack struct {
	url      string
	dir      string // models dir
	data     string // data dir of the SQLite store
	gate     *auth.Gate
	store    *faultStore
	reg      *models.Registry
	ln       *connlimit.Listener
	runs     atomic.Int64
	admin    string
	http     *http.Server
	shutdown func()
}

type stackOptions struct {
	delay         time.Duration
	queue         int
	maxConns      int
	perAddr       int
	bodyTimeout   time.Duration
	idleTimeout   time.Duration
	headerTimeout time.Duration
}

// faultStore is the real SQLite store with a switch that makes its writes
// fail the way a full disk or a read-only mount does.
type faultStore struct {
	*auth.SQLiteStore
	broken atomic.Bool
}

var errReadonly = errors.New("attempt to write a readonly database")

func (f *faultStore) ProbeWrite(ctx context.Context) error {
	if f.broken.Load() {
		return errReadonly
	}
	return f.SQLiteStore.ProbeWrite(ctx)
}

func (f *faultStore) RecordUsage(ctx context.Context, recs ...auth.UsageRecord) error {
	if f.broken.Load() {
		return errReadonly
	}
	return f.SQLiteStore.RecordUsage(ctx, recs...)
}

func writeModel(t testing.TB, dir, id, unet string) {
	t.Helper()
	path := filepath.Join(dir, id, "unet", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, id, "model_index.json"), []byte(`{}`), 0o644)
	if err := os.WriteFile(path, []byte(unet), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir()}
	writeModel(t, s.dir, "alpha", "ok weights")
	writeModel(t, s.dir, "beta", "ok weights")
	open := func(dir string) (*stubPipeline, error) {
		return &stubPipeline{dir: dir, delay: o.delay, runs: &s.runs}, nil
	}
	reg, err := models.NewRegistry(models.RegistryOptions{Open: models.OpenWith(open), Dir: s.dir, DefaultModel: "alpha",
		DefaultAliases: server.AliasNames(), QueueSize: cmpOr(o.queue, 16), KeepAlive: -1, MaxResident: 2,
		BrokenBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.reg = reg
	s.data = t.TempDir()
	sq, err := auth.OpenDataDir(context.Background(), s.data)
	if err != nil {
		t.Fatal(err)
	}
	s.store = &faultStore{SQLiteStore: sq}
	if s.gate, err = auth.New(s.store, auth.Options{}); err != nil {
		t.Fatal(err)
	}
	s.admin = s.key(t, auth.KeySpec{Name: "admin", Admin: true})
	srv, err := server.New(reg, server.Options{Gate: s.gate, Admin: reg, Logger: slog.New(slog.DiscardHandler),
		BodyTimeout: cmpDur(o.bodyTimeout, 2*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = connlimit.New(raw, connlimit.Options{Max: cmpOr(o.maxConns, 512), PerAddr: cmpOr(o.perAddr, 256)})
	// The settings serve uses: header and idle timeouts, no Read/WriteTimeout.
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: cmpDur(o.headerTimeout, 2*time.Second),
		IdleTimeout: cmpDur(o.idleTimeout, 5*time.Second), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	s.http = hs
	go hs.Serve(s.ln)
	s.url = "http://" + raw.Addr().String()
	s.shutdown = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		hs.Close()
		reg.Close(ctx)
		srv.Close()
		sq.Close()
	}
	t.Cleanup(s.shutdown)
	return s
}

func cmpDur(v, fallback time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return fallback
}

func (s *stack) key(t testing.TB, ks auth.KeySpec) string {
	t.Helper()
	secret, _, err := s.gate.CreateKey(context.Background(), ks)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// answer is one response: status, headers, body (capped at 64 MB).
type answer struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (a answer) code() string {
	i := strings.Index(string(a.body), `"code":"`)
	if i < 0 {
		return ""
	}
	rest := string(a.body[i+8:])
	return rest[:max(strings.IndexByte(rest, '"'), 0)]
}

func (a answer) String() string {
	if c := a.code(); c != "" {
		return fmt.Sprintf("%d %s in %s", a.status, c, a.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d in %s", a.status, a.took.Round(time.Millisecond))
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func (s *stack) do(t testing.TB, method, path, key, contentType string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return answer{status: -1, body: []byte(err.Error()), took: time.Since(start)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return answer{resp.StatusCode, resp.Header, data, time.Since(start)}
}

func (s *stack) json(t testing.TB, path, key, body string, header ...string) answer {
	return s.do(t, http.MethodPost, path, key, "application/json", strings.NewReader(body), header...)
}

// raw writes head+body on a fresh connection and reads the answer within
// limit; status -1 when none came.
func (s *stack) raw(t testing.TB, head, body string, limit time.Duration) answer {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(limit))
	c.Write([]byte(head + body))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return answer{status: -1, took: time.Since(start)}
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return answer{resp.StatusCode, resp.Header, data, time.Since(start)}
}

func b64Reader(b []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(b))
}

func (a answer) status3() string { return strconv.Itoa(a.status) }
