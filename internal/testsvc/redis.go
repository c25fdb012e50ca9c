package testsvc

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// StartRedis runs a throwaway redis-server (no persistence) on a free
// loopback port for the test and returns its host:port; the test's cleanup
// stops it. It skips the test when redis-server is not installed.
func StartRedis(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not on PATH: skipping (apt-get install redis-server, or run scripts/ci-deps.sh)")
	}
	for attempt := range 3 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			tb.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--dir", tb.TempDir(), "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if waitRedis(addr, exited) {
			tb.Cleanup(func() {
				if err := cmd.Process.Kill(); err != nil {
					tb.Errorf("stop redis-server: %v", err)
				}
				<-exited
			})
			return addr
		}
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			tb.Logf("stop redis-server: %v", err)
		}
		<-exited
		tb.Logf("redis-server attempt %d on %s did not come up", attempt+1, addr)
	}
	tb.Fatal("redis-server did not start")
	return ""
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitRedis reports whether the server at addr answers PING within 5s.
func waitRedis(addr string, exited <-chan error) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if pingRedis(addr) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// pingRedis speaks just enough RESP to send PING and read +PONG.
func pingRedis(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return false
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// RedisURL is the redis:// URL of database db at addr.
func RedisURL(addr string, db int) string {
	return "redis://" + addr + "/" + strconv.Itoa(db)
}
