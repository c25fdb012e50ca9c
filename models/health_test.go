package models

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// fileLoadPipeline loads like a real one in the way that matters here: it
// reads its unet file, and a corrupt one fails the load.
type fileLoadPipeline struct {
	fakePipeline
	loads *atomic.Int32
}

var errCorrupt = errors.New("unet/model.onnx: protobuf parsing failed")

func (p *fileLoadPipeline) Load(ctx context.Context) error {
	p.loads.Add(1)
	data, err := os.ReadFile(filepath.Join(p.dir, "unet", "model.onnx"))
	if err != nil {
		return err
	}
	if bytes.HasPrefix(data, []byte("corrupt")) {
		return errCorrupt
	}
	return p.fakePipeline.Load(ctx)
}

func writeUnet(t *testing.T, dir, id, content string) {
	t.Helper()
	path := filepath.Join(dir, id, "unet", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFailureMarksModelBroken(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a", "b"} {
		writeUnet(t, dir, id, "weights")
	}
	var calls []string
	var loads atomic.Int32
	open := func(d string) (*fileLoadPipeline, error) {
		return &fileLoadPipeline{fakePipeline: fakePipeline{dir: d, log: &calls}, loads: &loads}, nil
	}
	r, err := NewRegistry(RegistryOptions{Open: OpenWith(open), Dir: dir, KeepAlive: -1, MaxResident: 2, BrokenBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	req := spec.Request{Seed: 1, HasSeed: true}

	writeUnet(t, dir, "a", "corrupt after validation")
	var mb *ModelBrokenError
	if _, err := r.Generate(ctx, "a", req); !errors.As(err, &mb) || mb.ID != "a" || !errors.Is(err, errCorrupt) {
		t.Fatalf("corrupt model: %v, want *ModelBrokenError for a", err)
	}
	if _, err := r.Generate(ctx, "b", req); err != nil {
		t.Fatalf("the other model: %v", err)
	}
	before := loads.Load()
	if _, err := r.Generate(ctx, "a", req); !errors.Is(err, ErrModelBroken) || mb.RetryAt.IsZero() {
		t.Fatalf("again within the back-off: %v, want ErrModelBroken with a retry time", err)
	}
	if loads.Load() != before {
		t.Fatal("a broken model was loaded again within its back-off, its files unchanged")
	}
	if b := r.Broken(); len(b) != 1 || b[0].ID != "a" || !b[0].Load || !errors.Is(b[0].Err, ErrModelBroken) {
		t.Fatalf("Broken() = %+v, want a, failed at load", b)
	}
	if s := r.Stats(); s.Broken != 1 {
		t.Fatalf("Stats().Broken = %d, want 1", s.Broken)
	}
	if err := r.Ready(ctx); !errors.Is(err, ErrModelBroken) {
		t.Fatalf("Ready while the default model (a) is broken: %v, want ErrModelBroken", err)
	}

	writeUnet(t, dir, "a", "weights, repaired") // a new size and mtime: retried at once
	if _, err := r.Generate(ctx, "a", req); err != nil {
		t.Fatalf("after the files changed: %v", err)
	}
	if b := r.Broken(); len(b) != 0 {
		t.Fatalf("Broken() after repair = %+v", b)
	}
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready after repair: %v", err)
	}
}

func TestBrokenModelRetriedAfterBackoff(t *testing.T) {
	dir := t.TempDir()
	writeUnet(t, dir, "c", "corrupt")
	var calls []string
	var loads atomic.Int32
	open := func(d string) (*fileLoadPipeline, error) {
		return &fileLoadPipeline{fakePipeline: fakePipeline{dir: d, log: &calls}, loads: &loads}, nil
	}
	r, err := NewRegistry(RegistryOptions{Open: OpenWith(open), Dir: dir, KeepAlive: -1, BrokenBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	for range 2 {
		if _, err := r.Generate(ctx, "c", spec.Request{}); !errors.Is(err, ErrModelBroken) {
			t.Fatalf("corrupt model: %v", err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads within the back-off, want 1", n)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := r.Generate(ctx, "c", spec.Request{}); !errors.Is(err, ErrModelBroken) {
		t.Fatalf("after the back-off: %v", err)
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads after the back-off, want 2 (one retry)", n)
	}
	var mb *ModelBrokenError
	_, err = r.Generate(ctx, "c", spec.Request{})
	if !errors.As(err, &mb) || time.Until(mb.RetryAt) < 60*time.Millisecond {
		t.Fatalf("the second failure should double the back-off: %v (retry in %v)", err, time.Until(mb.RetryAt))
	}
}
