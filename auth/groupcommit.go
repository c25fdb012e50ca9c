package auth

import (
	"context"
	"fmt"
	"sync"
)

// maxBatch bounds one group commit, so a flood cannot make one transaction
// (and every caller waiting on it) arbitrarily long.
const maxBatch = 512

// usageWriter is a group-commit writer: one goroutine owns usage writes;
// records that queue while it commits go together into the next transaction,
// and each caller is answered only after the commit that holds its records.
type usageWriter struct {
	commit func([]usageWrite) error // one transaction; the store's own
	queue  chan usageWrite
	mu     sync.RWMutex // held for reading while sending; close takes it to stop sends
	shut   bool
	done   chan struct{}
}

type usageWrite struct {
	recs   []UsageRecord
	result chan error // buffered: the writer never blocks on a caller who left
}

func newUsageWriter(commit func([]usageWrite) error) *usageWriter {
	w := &usageWriter{commit: commit, queue: make(chan usageWrite, maxBatch), done: make(chan struct{})}
	go w.loop()
	return w
}

// write waits for the commit unless ctx ends first; then the records may or
// may not be stored, and the caller must not treat them as acknowledged.
func (w *usageWriter) write(ctx context.Context, recs []UsageRecord) error {
	req := usageWrite{recs: recs, result: make(chan error, 1)}
	w.mu.RLock()
	if w.shut {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.queue <- req:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("record usage: %w", ctx.Err())
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("record usage: %w", ctx.Err())
	}
}

func (w *usageWriter) loop() {
	defer close(w.done)
	for first := range w.queue {
		batch := []usageWrite{first}
		n := len(first.recs)
	drain:
		for n < maxBatch {
			select {
			case req, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, req)
				n += len(req.recs)
			default:
				break drain
			}
		}
		err := w.commit(batch)
		for _, req := range batch {
			req.result <- err
		}
	}
}

// close stops new writes, lets queued ones commit, and waits for the loop.
func (w *usageWriter) close() {
	w.mu.Lock()
	if !w.shut {
		w.shut = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}
