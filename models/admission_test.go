package models

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestQueueCheckMatchesDo(t *testing.T) {
	q := NewQueue(0, QueueOptions{})
	if err := q.Check(); err != nil {
		t.Fatalf("idle queue: %v", err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- q.Do(context.Background(), func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	var full *QueueFullError
	if err := q.Check(); !errors.As(err, &full) {
		t.Fatalf("busy queue of size 0: Check = %v, want *QueueFullError", err)
	}
	if err := q.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Do on the same queue = %v, want ErrQueueFull", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Check(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed queue: Check = %v, want ErrClosed", err)
	}
}
