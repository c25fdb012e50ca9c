package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawRequest writes head (and partial body) on a fresh connection and
// reads the answer, with a bound on the whole exchange.
func rawRequest(t *testing.T, ts *httptest.Server, head, body string) (*http.Response, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	start := time.Now()
	c.SetDeadline(start.Add(5 * time.Second))
	if _, err := c.Write([]byte(head + body)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	resp.Body.Close()
	return resp, time.Since(start)
}

func TestStalledBodyAnswered408(t *testing.T) {
	ts, _, admin := authServer(t, func(o *Options) { o.BodyTimeout = 200 * time.Millisecond })
	head := fmt.Sprintf("POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n", admin)
	resp, took := rawRequest(t, ts, head, `{"prompt":`)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if took > 2*time.Second {
		t.Errorf("408 after %v, want about the 200ms body timeout", took)
	}
}

// TestUnauthenticatedLargeBodyNotRead: the 401 comes from the headers; the
// 20 MB the client announces are never waited for.
func TestUnauthenticatedLargeBodyNotRead(t *testing.T) {
	ts, _, _ := authServer(t)
	for _, length := range []int{20_000_000, 1000} {
		head := "POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", length)
		resp, took := rawRequest(t, ts, head, "")
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Fatalf("no key, %d-byte body unsent: %d (close %v), want 401 and close", length, resp.StatusCode, resp.Close)
		}
		if took > time.Second {
			t.Errorf("%d-byte body: 401 after %v", length, took)
		}
	}
}

// TestBodyTimeoutSparesLongGenerations: the deadline is lifted once the
// body is read, so a generation longer than it completes.
func TestBodyTimeoutSparesLongGenerations(t *testing.T) {
	gen := newFakeGenerator()
	gen.setDelay(600 * time.Millisecond)
	ts := startServer(t, gen, func(o *Options) { o.BodyTimeout = 150 * time.Millisecond })
	body := `{"model":"sd-tiny","prompt":"a cat"}`
	head := fmt.Sprintf("POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	resp, took := rawRequest(t, ts, head, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("long generation: %d after %v, want 200", resp.StatusCode, took)
	}
	if took < 600*time.Millisecond {
		t.Errorf("answered after %v, before the generation's 600ms", took)
	}
}
