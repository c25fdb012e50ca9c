// Package connlimit caps the open connections of a listener, in all and
// per client address. A connection over a cap is accepted, answered a
// minimal HTTP 503 and closed at once, so the file descriptors a flood can
// hold stay bounded and the accept loop never stalls.
package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options are a Listener's caps; 0 means no cap.
type Options struct {
	Max     int // open connections in all
	PerAddr int // open connections from one client IP
	// Exempt addresses (reverse proxies) count towards Max only.
	Exempt []netip.Prefix
}

// Listener wraps a net.Listener with the caps.
type Listener struct {
	net.Listener
	opts Options

	mu      sync.Mutex
	open    int
	perAddr map[netip.Addr]int

	refused atomic.Int64
}

// New wraps ln.
func New(ln net.Listener, opts Options) *Listener {
	return &Listener{Listener: ln, opts: opts, perAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps; connections over
// them are refused and closed here.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if l.admit(addr) {
			return &conn{Conn: c, l: l, addr: addr}, nil
		}
		l.refused.Add(1)
		refuse(c)
	}
}

// refuse answers a connection over a cap and closes it.
func refuse(c net.Conn) {
	const body = `{"error":{"message":"Too many open connections. Please retry.","type":"server_error","param":null,"code":"too_many_connections"}}`
	msg := "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	_ = c.SetWriteDeadline(time.Now().Add(time.Second)) // a peer that never reads cannot hold us
	_, _ = c.Write([]byte(msg))                         // best effort: the connection closes either way
	c.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (l *Listener) exempt(a netip.Addr) bool {
	for _, p := range l.opts.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *Listener) admit(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Max > 0 && l.open >= l.opts.Max {
		return false
	}
	perAddr := l.opts.PerAddr > 0 && a.IsValid() && !l.exempt(a)
	if perAddr && l.perAddr[a] >= l.opts.PerAddr {
		return false
	}
	l.open++
	if a.IsValid() {
		l.perAddr[a]++
	}
	return true
}

func (l *Listener) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if a.IsValid() {
		if l.perAddr[a]--; l.perAddr[a] <= 0 {
			delete(l.perAddr, a)
		}
	}
}

// Open is the number of connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Refused counts the connections refused over a cap.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// conn gives its slot back once, however often it is closed.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
