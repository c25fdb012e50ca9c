package main

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/server"
)

func TestAdmissionFlagsDefaultsAndParsing(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var f admissionFlags
	f.register(fs)
	var o server.Options
	f.apply(&o)
	want := server.Options{MaxInputPixels: server.DefaultMaxInputPixels, MaxImagePixels: server.DefaultMaxImagePixels,
		MaxRequestPixels: server.DefaultMaxRequestPixels, DecodeBudget: server.DefaultDecodeBudget, DecodeWait: server.DefaultDecodeWait}
	if o.MaxInputPixels != want.MaxInputPixels || o.MaxImagePixels != want.MaxImagePixels || o.MaxRequestPixels != want.MaxRequestPixels ||
		o.DecodeBudget != want.DecodeBudget || o.DecodeWait != want.DecodeWait {
		t.Errorf("defaults give %+v, want the server's", o)
	}
	if err := f.validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	err := fs.Parse([]string{"--max-input-pixels", "2048x1024", "--max-image-pixels", "1000000", "--max-request-pixels", "4x1024X1024",
		"--decode-budget", "67108864", "--decode-wait", "500ms"})
	if err != nil {
		t.Fatal(err)
	}
	f.apply(&o)
	if o.MaxInputPixels != 2048*1024 || o.MaxImagePixels != 1000000 || o.MaxRequestPixels != 4<<20 ||
		o.DecodeBudget != 64<<20 || o.DecodeWait != 500*time.Millisecond {
		t.Errorf("parsed %+v", o)
	}
	if got := fs.Lookup("max-request-pixels").Value.String(); got != "4x1024X1024" {
		t.Errorf("String() = %q, want the text given", got)
	}
	for _, bad := range []string{"", "0", "-5", "10x", "x10", "1.5x2", "big", "99999999999x99999999999"} {
		var p pixelCount
		if err := p.Set(bad); err == nil {
			t.Errorf("pixel count %q accepted as %d", bad, p.n)
		}
	}
}

// Bad bounds fail before ONNX Runtime loads: the library named here does
// not exist, so an error about the flag (not the library) shows the order;
// the gateway's NATS and PostgreSQL addresses are never dialled.
func TestServeRejectsBadAdmissionFlags(t *testing.T) {
	noLib := filepath.Join(t.TempDir(), "libonnxruntime.so")
	for _, c := range []struct{ args []string }{
		{[]string{"--max-input-pixels", "0"}},
		{[]string{"--max-input-pixels", "5000x5000"}},
		{[]string{"--max-image-pixels", "wide"}},
		{[]string{"--max-image-pixels", "4096x4096", "--max-request-pixels", "1024x1024"}},
		{[]string{"--decode-budget", "1000"}},
		{[]string{"--decode-wait", "0s"}},
	} {
		name := strings.TrimPrefix(c.args[len(c.args)-2], "--")
		for cmd, base := range map[string][]string{
			"serve":   {"--ort-lib", noLib, "--models", t.TempDir(), "--data", t.TempDir()},
			"gateway": {"--nats", "nats://127.0.0.1:1", "--postgres", "postgres://127.0.0.1:1/x"},
		} {
			args := append(append([]string{cmd}, base...), c.args...)
			err := run(context.Background(), args, mapEnv(nil), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "onnxruntime") {
				t.Errorf("%s %v: %v, want an error naming --%s before the runtime loads", cmd, c.args, err, name)
			}
		}
	}
}
