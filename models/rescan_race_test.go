package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// holdWorker occupies the GPU worker until the returned func is called.
func holdWorker(t *testing.T, r *Registry) func() {
	t.Helper()
	hold, running := make(chan struct{}), make(chan struct{})
	go r.queue.Do(context.Background(), func(context.Context) error { close(running); <-hold; return nil })
	<-running
	return func() { close(hold) }
}

// A job queued for a model that a rescan replaces must not load the old
// folder again: nothing could ever unload it.
func TestRescanWhileQueuedLeavesNoOrphan(t *testing.T) {
	dir := modelsDir(t)
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: dir, QueueSize: 4, KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	req := spec.Request{Prompt: "a cat", Steps: 1, Seed: 5, HasSeed: true}
	if _, err := r.Generate(context.Background(), "alpha", req); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	old := r.entries["alpha"]
	r.mu.Unlock()
	release := holdWorker(t, r)
	done := make(chan error, 1)
	go func() { _, err := r.Generate(context.Background(), "alpha", req); done <- err }()
	time.Sleep(50 * time.Millisecond) // queued behind the held worker
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "alpha", "model_index.json"), future, future)
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, ErrModelNotFound) {
		t.Errorf("queued job for a replaced model: %v, want ErrModelNotFound", err)
	}
	r.Close(context.Background())
	if old.model.Loaded() {
		t.Error("the replaced model's sessions are still loaded after Close")
	}
}

// Past the drain deadline, a generation cancelled by the closing worker
// says so (ErrClosed: the server answers 503), not a bare context.Canceled.
func TestClosingWorkerCancelsWithErrClosed(t *testing.T) {
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: modelsDir(t), QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Generate(context.Background(), "alpha", spec.Request{Prompt: "x", Steps: 150, Progress: func(step, _ int) {
			if step == 1 {
				close(started)
			}
		}})
		done <- err
	}()
	<-started
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	r.Close(expired)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("generation cancelled by shutdown: %v, want ErrClosed", err)
	}
}
