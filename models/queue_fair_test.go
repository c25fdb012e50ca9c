package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// One key that queued many jobs takes turns with the keys that queued
// after it, instead of running all of its jobs first.
func TestQueueTakesTurnsByOwner(t *testing.T) {
	q := NewQueue(8, QueueOptions{OwnerShare: 1})
	defer closeQueue(t, q)
	g, gateDone := occupy(t, q)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, job := range []string{"a1", "a2", "a3", "b1", "c1", "b2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := WithOwner(context.Background(), job[:1])
			q.Do(ctx, func(context.Context) error {
				mu.Lock()
				order = append(order, job)
				mu.Unlock()
				return nil
			})
		}()
		waitDepth(t, q, i+1)
	}
	close(g.release)
	wg.Wait()
	<-gateDone
	if got, want := fmt.Sprint(order), "[a1 b1 c1 a2 b2 a3]"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
}

// A key holds at most its share of the waiting slots; the rest stay open
// to other keys, and jobs without a key are not limited.
func TestQueueOwnerShare(t *testing.T) {
	q := NewQueue(4, QueueOptions{}) // default share 1/2: two slots a key
	defer closeQueue(t, q)
	g, gateDone := occupy(t, q)
	var wg sync.WaitGroup
	queue := func(owner string, depth int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Do(WithOwner(context.Background(), owner), func(context.Context) error { return nil })
		}()
		waitDepth(t, q, depth)
	}
	queue("a", 1)
	queue("a", 2)
	var full *QueueFullError
	err := q.Do(WithOwner(context.Background(), "a"), func(context.Context) error { return nil })
	if !errors.As(err, &full) || !full.Share || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a's third job: %v, want its share full", err)
	}
	queue("b", 3)
	queue("", 4)
	err = q.Do(WithOwner(context.Background(), "c"), func(context.Context) error { return nil })
	if !errors.As(err, &full) || full.Share {
		t.Fatalf("c on a full queue: %v, want the queue full", err)
	}
	close(g.release)
	wg.Wait()
	<-gateDone
}
