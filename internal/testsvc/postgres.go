// Package testsvc starts real services (PostgreSQL) for tests in other
// packages. It is test support only: nothing in sdgate's binary imports it.
package testsvc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
)

// Postgres is a PostgreSQL server running from a temporary directory.
type Postgres struct {
	Dir  string // data and socket directory
	Port int
	User string // the superuser initdb created
	bin  string
	cred *syscall.Credential // nil unless the test runs as root
}

// DSN is a connection string for database db on p (key=value form).
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", p.Port, p.User, db)
}

// pgBinDir finds Debian's /usr/lib/postgresql/<version>/bin, newest first.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] > dirs[j] })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb found: install Debian's postgresql package: scripts/ci-deps.sh")
}

// StartPostgres starts a server in a new directory under os.TempDir (not a
// test's TempDir: its parents are private to root), as user nobody when
// running as root, since postgres refuses to run as root. p.Stop stops it
// and removes the directory.
func StartPostgres() (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sdgate-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres dir: %w", err)
	}
	p, err := startIn(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func startIn(bin, dir string) (*Postgres, error) {
	p := &Postgres{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("look up nobody: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
		p.User = "nobody"
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("current user: %w", err)
		}
		p.User = u.Username
	}
	data := filepath.Join(dir, "data")
	if out, err := p.cmd("initdb", "-D", data, "-A", "trust", "-U", p.User, "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.Port = port
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	if out, err := p.cmd("pg_ctl", "-D", data, "-o", opts, "-w", "-t", "30",
		"-l", filepath.Join(dir, "log"), "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	return p, nil
}

// Stop shuts the server down fast.
func (p *Postgres) Stop() error {
	out, err := p.cmd("pg_ctl", "-D", filepath.Join(p.Dir, "data"), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return os.RemoveAll(p.Dir)
}

func (p *Postgres) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(p.bin, name), args...)
	c.Dir = p.Dir
	if p.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return c
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SkipWithoutPostgres skips t when the server binaries are missing.
func SkipWithoutPostgres(t testing.TB) {
	t.Helper()
	if _, err := pgBinDir(); err != nil {
		t.Skip(err.Error())
	}
}

// PostgresForTest is a PostgreSQL server for t, stopped when t ends; t
// skips when the server binaries are missing.
func PostgresForTest(t testing.TB) *Postgres {
	t.Helper()
	SkipWithoutPostgres(t)
	pg, err := StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	return pg
}
