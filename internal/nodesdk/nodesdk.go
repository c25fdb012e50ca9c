// Package nodesdk gives tests the official OpenAI Node SDK (openai@6):
// node itself, and a NODE_PATH folder with the package unpacked from `npm
// pack` into the user's cache, outside the repo. It is test support only.
package nodesdk

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Spec is the npm package the Node tests run against.
const Spec = "openai@6"

// Node is the node binary; without one the test skips, saying how to get it.
func Node(tb testing.TB) string {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Skip("node is not installed: skipping the official Node SDK test (Debian's nodejs; scripts/ci-deps.sh installs it)")
	}
	return node
}

// Modules returns a NODE_PATH folder holding the openai package, fetched
// on first use into ~/.cache/sdgate/node-openai6. It skips the test when
// npm or the registry is unavailable.
func Modules(tb testing.TB) string {
	tb.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		tb.Skipf("no home directory for the npm cache: %v", err)
	}
	cache := filepath.Join(home, ".cache", "sdgate", "node-openai6")
	modules := filepath.Join(cache, "node_modules")
	if version, err := packageVersion(filepath.Join(modules, "openai")); err == nil && strings.HasPrefix(version, "6.") {
		return modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		tb.Skip("npm is not installed: cannot fetch the official Node SDK (Debian's npm; scripts/ci-deps.sh installs it)")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, npm, "pack", "--silent", "--pack-destination", cache, Spec).Output()
	if err != nil {
		tb.Skipf("npm pack %s failed (registry unreachable?): %v", Spec, err)
	}
	tgz := filepath.Join(cache, lastLine(string(out)))
	staging := filepath.Join(cache, fmt.Sprintf("staging-%d", os.Getpid()))
	if err := Untar(tgz, filepath.Join(staging, "openai")); err != nil {
		tb.Fatalf("unpack %s: %v", tgz, err)
	}
	// Swap the folder in whole, so a concurrent or interrupted run never
	// sees a half-unpacked package.
	if err := os.RemoveAll(modules); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(staging, modules); err != nil {
		tb.Fatal(err)
	}
	return modules
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func packageVersion(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return "", fmt.Errorf("%s: %w", dir, err)
	}
	return pkg.Version, nil
}

// Untar extracts an npm tarball's package/ folder into dest: regular files
// only, refusing entries that would escape it.
func Untar(tgz, dest string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		rel, ok := strings.CutPrefix(filepath.Clean(hdr.Name), "package"+string(filepath.Separator))
		if !ok || !filepath.IsLocal(rel) || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := writeFile(filepath.Join(dest, rel), tr); err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
