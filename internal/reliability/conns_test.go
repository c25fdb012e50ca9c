package reliability

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Finding 2: idle keep-alive connections are capped per address and
// closed after the idle timeout; a normal request from elsewhere still
// gets through while they are held.
func TestProbeIdleConnections(t *testing.T) {
	const perAddr = 64
	s := newStack(t, stackOptions{perAddr: perAddr, maxConns: 256, idleTimeout: 500 * time.Millisecond})
	n := scale(300, 1000)
	addr := strings.TrimPrefix(s.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	tally("idle connections", n)
	refused := 0
	for range n {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, c)
	}
	// Let the server accept (or refuse) them all.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && int64(s.ln.Open())+s.ln.Refused() < int64(len(conns)) {
		time.Sleep(10 * time.Millisecond)
	}
	held := s.ln.Open()
	check(t, fmt.Sprintf("%d idle connections from one address", n), fmt.Sprintf("open <= %d, rest 503+closed", perAddr),
		fmt.Sprintf("open %d, refused %d", held, s.ln.Refused()), held <= perAddr && s.ln.Refused() >= int64(len(conns)-perAddr))

	// Another client address still gets served.
	other, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", addr)
	if err == nil {
		defer other.Close()
		other.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(other, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		buf := make([]byte, 12)
		_, rerr := other.Read(buf)
		check(t, "request from another address while they are held", "200", strings.TrimSpace(string(buf)),
			rerr == nil && strings.HasPrefix(string(buf), "HTTP/1.1 200"))
	}

	// The header timeout and idle timeout free what is left.
	start := time.Now()
	for time.Since(start) < 5*time.Second && s.ln.Open() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	check(t, "those idle connections after the timeouts", "0 open <5s",
		fmt.Sprintf("%d open after %s", s.ln.Open(), time.Since(start).Round(10*time.Millisecond)), s.ln.Open() == 0)
}

// Finding 2: stalled bodies are answered; an unauthenticated one at once.
func TestProbeStalledBodies(t *testing.T) {
	s := newStack(t, stackOptions{bodyTimeout: 300 * time.Millisecond})
	a := s.raw(t, "POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 20000000\r\n\r\n", "", 5*time.Second)
	check(t, "unauthenticated POST announcing 20 MB, body never sent", "401 <1s", a.String(), a.status == 401 && a.took < time.Second)
	a = s.raw(t, "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+s.admin+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", `{"prompt":`, 5*time.Second)
	check(t, "authenticated POST whose body stalls (body timeout 300ms)", "408 <1.5s", a.String(), a.status == 408 && a.took < 1500*time.Millisecond)
	a = s.raw(t, "POST /v1/images/gen", "", 5*time.Second)
	check(t, "request whose headers stall (header timeout 2s)", "closed <3s", fmt.Sprintf("status %d after %s", a.status, a.took.Round(time.Millisecond)),
		a.took < 3*time.Second)
	tally("faults", 3)
}

// Finding 2: a generation longer than the body timeout is not cut.
func TestProbeLongGenerationNotCut(t *testing.T) {
	s := newStack(t, stackOptions{delay: 1200 * time.Millisecond, bodyTimeout: 200 * time.Millisecond, idleTimeout: 300 * time.Millisecond})
	var wg sync.WaitGroup
	answers := make([]answer, 3)
	for i := range answers {
		wg.Go(func() {
			answers[i] = s.json(t, "/v1/images/generations", s.admin, `{"model":"alpha","prompt":"x"}`)
		})
	}
	wg.Wait()
	ok := true
	var slowest time.Duration
	for _, a := range answers {
		ok = ok && a.status == 200
		slowest = max(slowest, a.took)
	}
	check(t, "3 queued generations of 1.2s each, body timeout 0.2s, idle 0.3s", "all 200, the last after >2.4s",
		fmt.Sprintf("%s, %s, %s", answers[0].status3(), answers[1].status3(), answers[2].status3())+", slowest "+slowest.Round(time.Millisecond).String(),
		ok && slowest > 2400*time.Millisecond)
}

// Finding 2: a client stalling its body holds a graceful shutdown no
// longer than the body timeout, not the whole drain.
func TestProbeShutdownWithSlowClient(t *testing.T) {
	s := newStack(t, stackOptions{bodyTimeout: 500 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", s.admin)
	time.Sleep(100 * time.Millisecond)                                       // the request is in its handler, reading
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // serve's default drain
	defer cancel()
	start := time.Now()
	err = s.http.Shutdown(ctx)
	took := time.Since(start)
	check(t, "graceful shutdown while a client stalls its body (body timeout 0.5s, drain 30s)", "done <2s",
		fmt.Sprintf("done in %s (%v)", took.Round(10*time.Millisecond), err), err == nil && took < 2*time.Second)
	tally("faults", 1)
}
