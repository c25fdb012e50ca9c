package testsvc

import (
	"net"
	"strconv"
	"testing"
)

func TestStartPostgres(t *testing.T) {
	SkipWithoutPostgres(t)
	p, err := StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)))
	if err != nil {
		t.Fatalf("server not listening: %v", err)
	}
	c.Close()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}
