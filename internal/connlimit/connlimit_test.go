package connlimit

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// dialFrom opens a connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("dial from %s: %v (this host's loopback takes only 127.0.0.1)", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused reports whether the server answered c the over-cap 503.
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false // nothing came: the connection was taken
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1"
}

func TestCaps(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(raw, Options{Max: 3, PerAddr: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := raw.Addr().String()
	dialFrom(t, "127.0.0.1", addr) // connections are closed by t.Cleanup
	dialFrom(t, "127.0.0.1", addr)
	first := <-accepted
	<-accepted
	if a3 := dialFrom(t, "127.0.0.1", addr); !refused(t, a3) {
		t.Fatal("third connection from one address was not refused")
	}
	dialFrom(t, "127.0.0.2", addr)
	<-accepted
	if b2 := dialFrom(t, "127.0.0.3", addr); !refused(t, b2) {
		t.Fatal("connection over the process cap was not refused (exempt or not)")
	}
	if got := l.Open(); got != 3 {
		t.Fatalf("open = %d, want 3", got)
	}
	if got := l.Refused(); got != 2 {
		t.Fatalf("refused = %d, want 2", got)
	}
	first.Close()
	first.Close() // twice: one slot back, not two
	if got := l.Open(); got != 2 {
		t.Fatalf("open after close = %d, want 2", got)
	}
	dialFrom(t, "127.0.0.3", addr)
	e2 := dialFrom(t, "127.0.0.1", addr)
	<-accepted
	if !refused(t, e2) {
		t.Fatal("process cap did not hold after a slot came back and was taken")
	}
}
