package browsertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/server"
)

var screenshotDir = flag.String("screenshots", "", "TestScreenshots also writes playground.png and dashboard.png here (e.g. ../../docs)")

// shared is what every test reuses: one ONNX Runtime with the tiny model
// behind one registry, and one browser (each test opens its own tabs).
var shared struct {
	modelOnce sync.Once
	rt        *sd.Runtime
	reg       *models.Registry
	dir       string
	modelErr  error

	browserOnce   sync.Once
	browser       context.Context
	cancelBrowser context.CancelFunc
	browserErr    error
}

func TestMain(m *testing.M) {
	flag.Parse()
	gin.SetMode(gin.TestMode)
	code := m.Run()
	if shared.cancelBrowser != nil {
		shared.cancelBrowser()
	}
	if shared.reg != nil {
		shared.reg.Close(context.Background())
	}
	if shared.rt != nil {
		shared.rt.Close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// registry is the real model registry serving the synthetic "tiny" model.
func registry(t *testing.T) *models.Registry {
	t.Helper()
	lib := ortest.Library(t)
	shared.modelOnce.Do(func() {
		s := &shared
		if s.rt, s.modelErr = sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"}); s.modelErr != nil {
			return
		}
		if s.dir, s.modelErr = os.MkdirTemp("", "sdgate-browsertest-"); s.modelErr != nil {
			return
		}
		if _, s.modelErr = synth.Write(context.Background(), filepath.Join(s.dir, "tiny"), synth.Options{Preset: "tiny"}, nil); s.modelErr != nil {
			return
		}
		s.reg, s.modelErr = models.NewRegistry(models.RegistryOptions{Open: models.OpenWith(s.rt.OpenPipeline), Dir: s.dir, QueueSize: 8,
			KeepAlive: -1, DefaultAliases: server.AliasNames()})
	})
	if shared.modelErr != nil {
		t.Fatal(shared.modelErr)
	}
	return shared.reg
}

// chromiumPath finds a Chromium or Chrome binary, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary on PATH: install Debian's chromium package (scripts/ci-deps.sh does)")
	return ""
}

// browser is the one headless Chromium all tests share.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromiumPath(t)
	shared.browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe),
			chromedp.WindowSize(1000, 1400),
			chromedp.DisableGPU,
		)
		if os.Geteuid() == 0 {
			opts = append(opts, chromedp.NoSandbox) // Chromium refuses root with its sandbox on
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		shared.browser = ctx
		shared.cancelBrowser = func() { cancelCtx(); cancelAlloc() }
		if err := chromedp.Do(ctx); err != nil { // starts the browser
			shared.browserErr = fmt.Errorf("start %s: %w", exe, err)
		}
	})
	if shared.browserErr != nil {
		t.Fatal(shared.browserErr)
	}
	return shared.browser
}
