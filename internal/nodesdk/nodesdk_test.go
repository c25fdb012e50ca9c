package nodesdk

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// An npm tarball's package/ files land in dest; entries outside package/,
// escaping it, or not regular files are skipped.
func TestUntarKeepsOnlyThePackagesOwnFiles(t *testing.T) {
	dir := t.TempDir()
	tgz := filepath.Join(dir, "p.tgz")
	f, err := os.Create(tgz)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name string
		kind byte
	}{
		{"package/package.json", tar.TypeReg},
		{"package/lib/index.js", tar.TypeReg},
		{"package/../../escape.js", tar.TypeReg},
		{"other/x.js", tar.TypeReg},
		{"package/link", tar.TypeSymlink},
	} {
		body := []byte(`{"version":"6.1.0"}`)
		hdr := &tar.Header{Name: e.name, Typeflag: e.kind, Mode: 0o644, Size: int64(len(body)), Linkname: "/etc/passwd"}
		if e.kind != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.kind == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	gz.Close()
	f.Close()

	dest := filepath.Join(dir, "out", "openai")
	if err := Untar(tgz, dest); err != nil {
		t.Fatal(err)
	}
	if v, err := packageVersion(dest); err != nil || v != "6.1.0" {
		t.Errorf("version %q, %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "lib", "index.js")); err != nil {
		t.Error(err)
	}
	for _, p := range []string{filepath.Join(dir, "escape.js"), filepath.Join(dir, "out", "escape.js"), filepath.Join(dest, "link"), filepath.Join(dest, "x.js")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	if err := Untar(filepath.Join(dir, "missing.tgz"), dest); err == nil {
		t.Error("a missing tarball gave no error")
	}
}
