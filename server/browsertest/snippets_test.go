package browsertest

import (
	"context"
	"encoding/base64"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sdgate/sdgate/internal/nodesdk"
)

// nodeSDK is node and a node_modules folder with the official OpenAI Node
// SDK (openai@6), shared with the server's Node contracts.
func nodeSDK(t *testing.T) (node, modules string) {
	t.Helper()
	return nodesdk.Node(t), nodesdk.Modules(t)
}

// runNode runs a snippet the page shows as an ES module in a new folder
// holding files (name -> bytes), with the key in SDGATE_KEY as the snippet
// expects, and returns the folder.
func runNode(t *testing.T, node, modules, key, snippet string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	files["snippet.mjs"] = []byte(snippet)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "snippet.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SDGATE_KEY="+key)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Node snippet failed: %v\n%s\nsnippet:\n%s", err, out, snippet)
	}
	return dir
}

// checkPython fails unless the page's Python snippet parses (the openai
// package is not on the test machines, so it is not run).
func checkPython(t *testing.T, snippet string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		return
	}
	cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read())")
	cmd.Stdin = strings.NewReader(snippet)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the Python snippet does not parse: %v\n%s\nsnippet:\n%s", err, out, snippet)
	}
}

// checkPNGs fails unless each file in dir is a 64x64 PNG.
func checkPNGs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("the snippet did not write %s: %v", n, err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 64 || cfg.Height != 64 {
			t.Errorf("%s: %dx%d (%v), want a 64x64 PNG", n, cfg.Width, cfg.Height, err)
		}
	}
}

// The Node code the page shows runs as shown with the official SDK and
// writes the images: a streamed generation, an edit with the painted mask
// and a variation. The Python code for each parses.
func TestNodeSnippetsRun(t *testing.T) {
	e := newEnv(t)
	node, modules := nodeSDK(t)
	path, _ := writePicture(t)
	picture, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tb := e.open(t, "/playground")
	tb.setKey(e.user)
	tb.fillForm("a kite", map[string]string{"n": "2", "steps": "2", "seed": "21"})
	tb.do(chromedp.Click(chromedp.ID("stream")))
	dir := runNode(t, node, modules, e.user, tb.text("#node"), map[string][]byte{})
	checkPNGs(t, dir, "image-21.png", "image-22.png")
	checkPython(t, tb.text("#python"))

	tb.do(chromedp.Click(chromedp.ID("stream")), chromedp.SetValue(chromedp.ID("mode"), "edits"),
		chromedp.SetValue(chromedp.ID("n"), "1"),
		chromedp.SetUploadFiles(chromedp.ID("image"), []string{path}), chromedp.WaitVisible(chromedp.ID("canvas")))
	tb.paintStroke(0.3, 0.7, 0.4)
	snippet := tb.text("#node")
	if !strings.Contains(snippet, `mask: fs.createReadStream("mask.png")`) {
		t.Fatalf("the edit snippet has no mask:\n%s", snippet)
	}
	maskURL := get(tb, chromedp.Evaluate[string](`editor.mask.toDataURL("image/png")`))
	mask, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(maskURL, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	dir = runNode(t, node, modules, e.user, snippet, map[string][]byte{"image.png": picture, "mask.png": mask})
	checkPNGs(t, dir, "image-0.png")
	checkPython(t, tb.text("#python"))

	tb.do(chromedp.Evaluate[chromedp.Void](`showSnippets("variations", variationBody(), { image: "image.png" })`))
	dir = runNode(t, node, modules, e.user, tb.text("#node"), map[string][]byte{"image.png": picture})
	checkPNGs(t, dir, "image-0.png")
	checkPython(t, tb.text("#python"))
}
