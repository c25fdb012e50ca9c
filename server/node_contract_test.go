package server

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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
)

// nodeSDKSpec is the npm package the Node contract runs against.
const nodeSDKSpec = "openai@6"

// TestContractNodeSDK runs testdata/openai_node_contract.cjs, which drives
// the server with the official OpenAI Node SDK.
func TestContractNodeSDK(t *testing.T) {
	runNodeContract(t, newFakeGenerator())
}

func runNodeContract(t *testing.T, gen Backend) {
	if testing.Short() {
		t.Skip("skipping the Node SDK contract in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official Node SDK contract")
	}
	modules := nodeSDK(t)
	infos := slices.Clone(gen.Models())
	slices.SortFunc(infos, func(a, b models.Info) int { return strings.Compare(a.ID, b.ID) })
	if len(infos) == 0 {
		t.Fatal("the generator serves no model")
	}
	ts := startServer(t, gen)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_contract.cjs"))
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+modules,
		"SDGATE_BASE_URL="+ts.URL+"/v1",
		"SDGATE_LOCAL_MODEL="+infos[0].ID,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node contract:\n%s", out)
	if err != nil {
		t.Fatalf("node contract failed: %v", err)
	}
}

// nodeSDK returns a NODE_PATH folder holding the openai package, unpacked
// from `npm pack` into the user's cache (outside the repo) on first use. It
// skips the test when npm or the registry is unavailable.
func nodeSDK(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory for the npm cache: %v", err)
	}
	cache := filepath.Join(home, ".cache", "sdgate", "node-openai6")
	modules := filepath.Join(cache, "node_modules")
	if version, err := packageVersion(filepath.Join(modules, "openai")); err == nil && strings.HasPrefix(version, "6.") {
		return modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed: cannot fetch the official Node SDK")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", "--pack-destination", cache, nodeSDKSpec)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("npm pack %s failed (registry unreachable?): %v", nodeSDKSpec, err)
	}
	tgz := filepath.Join(cache, strings.TrimSpace(lastLine(string(out))))
	staging := filepath.Join(cache, fmt.Sprintf("staging-%d", os.Getpid()))
	if err := untarPackage(tgz, filepath.Join(staging, "openai")); err != nil {
		t.Fatalf("unpack %s: %v", tgz, err)
	}
	// Swap the folder in whole, so a concurrent or interrupted run never
	// sees a half-unpacked package.
	if err := os.RemoveAll(modules); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, modules); err != nil {
		t.Fatal(err)
	}
	return modules
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
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
		return "", err
	}
	return pkg.Version, nil
}

// untarPackage extracts an npm tarball's package/ folder into dest,
// refusing entries that would escape it.
func untarPackage(tgz, dest string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, ok := strings.CutPrefix(filepath.Clean(hdr.Name), "package"+string(filepath.Separator))
		if !ok || !filepath.IsLocal(rel) || hdr.Typeflag != tar.TypeReg {
			continue
		}
		path := filepath.Join(dest, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
}
