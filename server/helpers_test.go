package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// atomicTime is a settable clock for expiry tests.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) set(t time.Time) { a.mu.Lock(); a.t = t; a.mu.Unlock() }
func (a *atomicTime) get() time.Time  { a.mu.Lock(); defer a.mu.Unlock(); return a.t }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// drain reads and closes a body so the connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body) // a short read only costs the connection
	resp.Body.Close()
}

// errSecret is an internal error whose text must never reach clients.
var errSecret = errors.New("secret detail: /srv/models/x.onnx")
