package server

import (
	"fmt"
	"testing"

	"github.com/sdgate/sdgate/sd/spec"
)

func TestOutOfMemoryIsAClearAnswer(t *testing.T) {
	gen := newFakeGenerator()
	gen.fail(fmt.Errorf("run unet: %w", spec.ErrOutOfMemory))
	ts := startServer(t, gen)
	a := call(t, ts, "POST", "/v1/images/generations", "", genBody)
	typ, code, msg := errorOf(a)
	if a.status != 503 || typ != "server_error" || code != "out_of_memory" || msg == "" || a.header.Get("X-Should-Retry") != "false" {
		t.Errorf("got %d %q %q %q", a.status, typ, code, msg)
	}
}
