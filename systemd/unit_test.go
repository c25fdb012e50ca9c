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

// units are sdgate's unit files and the command each starts.
var units = map[string]string{
	"sdgate.service":         "/usr/local/bin/sdgate serve",
	"sdgate-gateway.service": "/usr/local/bin/sdgate gateway",
	"sdgate-worker@.service": "/usr/local/bin/sdgate worker --device cuda:%i",
}

// installedUnit is the unit name as `make install` would place it (a
// template as its instance 0), with ExecStart pointing at a binary that
// exists here (verify checks that).
func installedUnit(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ExecStart="+units[name]) {
		t.Fatalf("%s: ExecStart changed: update this test", name)
	}
	unit := strings.Replace(string(data), units[name], "/bin/true", 1)
	path := filepath.Join(t.TempDir(), strings.Replace(name, "@.", "@0.", 1))
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	for name := range units {
		out, err := exec.Command("systemd-analyze", "verify", installedUnit(t, name)).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}

// The hardening must keep `systemd-analyze security` at "OK" or better
// (exposure below 2.0 of 10) for every unit.
func TestUnitExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	for name := range units {
		path := installedUnit(t, name)
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
		if err != nil {
			t.Skipf("this systemd-analyze cannot score units offline: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(filepath.Base(path)) + `: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no exposure level in:\n%s", name, out)
		}
		if level, _ := strconv.ParseFloat(string(m[1]), 64); level >= 2.0 {
			t.Errorf("%s: exposure %.1f, want < 2.0:\n%s", name, level, out)
		}
	}
}

// LimitNOFILE must leave room above serve's default --max-conns (1024) for
// model files, the store and the listeners.
func TestUnitFileDescriptors(t *testing.T) {
	for _, name := range []string{"sdgate.service", "sdgate-gateway.service"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+)$`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s sets no LimitNOFILE", name)
		}
		if n, _ := strconv.Atoi(string(m[1])); n < 2*1024 {
			t.Errorf("%s: LimitNOFILE=%d, want at least twice the default --max-conns (1024)", name, n)
		}
	}
}
