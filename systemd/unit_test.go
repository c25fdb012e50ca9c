// Package systemd holds sdgate's systemd unit and its example environment
// file; this test checks the unit with systemd's own tools.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// installedUnit is the unit as `make install` would place it, with
// ExecStart pointing at a binary that exists here (verify checks that).
func installedUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("sdgate.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ExecStart=/usr/local/bin/sdgate serve") {
		t.Fatal("ExecStart changed: update this test")
	}
	unit := strings.Replace(string(data), "/usr/local/bin/sdgate serve", "/bin/true", 1)
	path := filepath.Join(t.TempDir(), "sdgate.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	out, err := exec.Command("systemd-analyze", "verify", installedUnit(t)).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The hardening must keep `systemd-analyze security` at "OK" or better
// (exposure below 2.0 of 10).
func TestUnitExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", installedUnit(t)).CombinedOutput()
	if err != nil {
		t.Skipf("this systemd-analyze cannot score units offline: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for sdgate.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level >= 2.0 {
		t.Errorf("exposure %.1f, want < 2.0:\n%s", level, out)
	}
}

// LimitNOFILE must leave room above serve's default --max-conns (1024) for
// model files, the store and the listeners.
func TestUnitFileDescriptors(t *testing.T) {
	data, err := os.ReadFile("sdgate.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("sdgate.service sets no LimitNOFILE")
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 2*1024 {
		t.Errorf("LimitNOFILE=%d, want at least twice the default --max-conns (1024)", n)
	}
}
