package models

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// QueueOptions are the optional knobs of a Queue.
type QueueOptions struct {
	// MaxWait bounds how long a job may wait for the worker; past it the job
	// is skipped with ErrQueueTimeout. 0 waits as long as the caller's ctx.
	MaxWait time.Duration
	// MaxRetryAfter caps the Retry-After estimate of QueueFullError
	// (default 60s, what openai-python still honours).
	MaxRetryAfter time.Duration
	// OwnerShare is the fraction of the waiting slots one owner (API key,
	// see WithOwner) may hold, at least one; 0 means DefaultOwnerShare, 1
	// or more no limit. Jobs without an owner share one unlimited slot.
	OwnerShare float64
}

// DefaultOwnerShare lets one key hold half the queue: the other half stays
// open to everyone else however much one key sends.
const DefaultOwnerShare = 0.5

// QueueFullError is ErrQueueFull with a hint of when a retry may succeed,
// estimated from recent job times. RetryAfter is 0 when nothing has run yet.
type QueueFullError struct {
	Waiting    int
	RetryAfter time.Duration
	// Share: the caller's key holds its whole share of the queue, though
	// the queue itself has room for others.
	Share bool
}

func (e *QueueFullError) Error() string {
	if e.Share {
		return fmt.Sprintf("queue share full: %d of this key's jobs waiting", e.Waiting)
	}
	return fmt.Sprintf("queue full: %d jobs waiting", e.Waiting)
}

// Unwrap lets errors.Is(err, ErrQueueFull) hold.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

// Queue serialises jobs on one worker goroutine, the only one that touches
// the device. At most size jobs wait behind the running one; more are
// refused at once, never blocked.
type Queue struct {
	size          int
	maxWait       time.Duration
	maxRetryAfter time.Duration
	ownerCap      int // waiting jobs one owner may hold

	mu       sync.Mutex
	wake     *sync.Cond // signalled when a job is queued or closing starts
	waiting  *list.List // of *queuedJob, front runs next
	running  *queuedJob
	closing  bool
	avgRun   time.Duration     // moving average of job run times
	finished chan struct{}     // closed when the worker exits
	served   map[string]uint64 // owner -> dispatch number of its last job
	dispatch uint64
}

type jobState int

const (
	stateQueued jobState = iota
	stateRunning
	stateDone
)

// queuedJob is one job in line. Its ctx is bound into run and ended
// instead of being stored: run calls the job with its own ctx (cancelled
// with the caller's), ended tells why it must not start.
type queuedJob struct {
	run    func() error
	ended  func() error // non-nil once the job's ctx is done
	cancel context.CancelCauseFunc
	owner  string
	state  jobState
	elem   *list.Element
	result chan error // buffered: the worker never blocks on it
}

// NewQueue starts the worker. size < 0 counts as 0: nothing waits, a job is
// taken only when the worker is idle.
func NewQueue(size int, opts QueueOptions) *Queue {
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = time.Minute
	}
	share := opts.OwnerShare
	if share <= 0 {
		share = DefaultOwnerShare
	}
	q := &Queue{
		ownerCap:      max(1, int(math.Ceil(share*float64(max(size, 0))))),
		served:        map[string]uint64{},
		size:          max(size, 0),
		maxWait:       opts.MaxWait,
		maxRetryAfter: opts.MaxRetryAfter,
		waiting:       list.New(),
		finished:      make(chan struct{}),
	}
	q.wake = sync.NewCond(&q.mu)
	go q.work()
	return q
}

// Do runs job on the worker and returns its error. A full queue answers
// *QueueFullError at once; a closed one ErrClosed. If ctx ends (or MaxWait
// passes) while the job waits, it is dropped without running and Do returns
// ErrQueueTimeout for a deadline (wrapping ctx's error) or ctx.Err() for a
// cancellation. Once running, the job's ctx is cancelled with the caller's
// and Do returns only after the job has.
func (q *Queue) Do(ctx context.Context, job func(ctx context.Context) error) error {
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j := &queuedJob{
		run: func() error { return job(jobCtx) },
		ended: func() error {
			if jobCtx.Err() == nil {
				return nil
			}
			return skipped(jobCtx)
		},
		cancel: cancel,
		owner:  ownerFrom(ctx),
		result: make(chan error, 1),
	}

	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return ErrClosed
	}
	if busy := q.waiting.Len() + q.runningCount(); busy > q.size {
		err := &QueueFullError{Waiting: q.waiting.Len(), RetryAfter: q.retryAfterLocked()}
		q.mu.Unlock()
		return err
	}
	if n := q.waitingOf(j.owner); j.owner != "" && n >= q.ownerCap && q.size > 0 {
		err := &QueueFullError{Waiting: n, RetryAfter: q.retryAfterLocked(), Share: true}
		q.mu.Unlock()
		return err
	}
	j.elem = q.waiting.PushBack(j)
	q.wake.Signal()
	q.mu.Unlock()

	var timeout <-chan time.Time
	if q.maxWait > 0 {
		timer := time.NewTimer(q.maxWait)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case err := <-j.result:
		return err
	case <-ctx.Done():
		if q.dequeue(j) {
			return skipped(ctx)
		}
	case <-timeout:
		if q.dequeue(j) {
			return fmt.Errorf("%w: waited %v", ErrQueueTimeout, q.maxWait)
		}
	}
	// The worker took the job first: its ctx follows ours, so it ends soon.
	return <-j.result
}

// skipped is the error of a job whose ctx ended before it ran.
func skipped(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrQueueTimeout, ctx.Err())
	}
	return context.Cause(ctx)
}

// dequeue removes a job that has not started; false if the worker took it.
func (q *Queue) dequeue(j *queuedJob) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.state != stateQueued {
		return false
	}
	q.waiting.Remove(j.elem)
	j.state = stateDone
	return true
}

func (q *Queue) runningCount() int {
	if q.running != nil {
		return 1
	}
	return 0
}

// retryAfterLocked estimates when the last waiting job will have started.
func (q *Queue) retryAfterLocked() time.Duration {
	if q.avgRun == 0 {
		return 0
	}
	d := q.avgRun * time.Duration(q.waiting.Len()+q.runningCount())
	return min(max(d, time.Second), q.maxRetryAfter)
}

// Depth is the number of jobs waiting, not counting the running one.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting.Len()
}

// Busy reports whether a job is running now.
func (q *Queue) Busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running != nil
}

func (q *Queue) work() {
	defer close(q.finished)
	for {
		q.mu.Lock()
		for q.waiting.Len() == 0 && !q.closing {
			q.wake.Wait()
		}
		if q.waiting.Len() == 0 {
			q.mu.Unlock()
			return
		}
		j := q.waiting.Remove(q.nextLocked()).(*queuedJob)
		q.dispatch++
		q.served[j.owner] = q.dispatch
		j.state = stateRunning
		q.running = j
		q.mu.Unlock()

		started := time.Now()
		err := q.runJob(j)
		took := time.Since(started)

		q.mu.Lock()
		q.running = nil
		j.state = stateDone
		if q.avgRun == 0 {
			q.avgRun = took
		} else {
			q.avgRun = (3*q.avgRun + took) / 4
		}
		q.mu.Unlock()
		j.result <- err
	}
}

// runJob runs one job unless its ctx already ended, and turns a panic into
// an error so one bad job cannot take the worker down.
func (q *Queue) runJob(j *queuedJob) (err error) {
	if err := j.ended(); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("queued job panicked: %v", p)
		}
	}()
	return j.run()
}

// Close stops taking jobs and lets the queued ones finish. If ctx ends
// first, the waiting jobs are dropped with ErrClosed and the running one is
// cancelled (cause ErrClosed); Close then returns once the worker has
// stopped, with ctx's error.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	q.closing = true
	q.wake.Broadcast()
	q.mu.Unlock()

	select {
	case <-q.finished:
		return nil
	case <-ctx.Done():
	}

	q.mu.Lock()
	for e := q.waiting.Front(); e != nil; e = e.Next() {
		j := e.Value.(*queuedJob)
		j.state = stateDone
		j.result <- ErrClosed
	}
	q.waiting.Init()
	if q.running != nil {
		q.running.cancel(ErrClosed)
	}
	q.mu.Unlock()
	<-q.finished
	return fmt.Errorf("queue drain: %w", ctx.Err())
}

// Check answers what Do would answer now for a new job without queueing
// one: *QueueFullError when the queue is full, ErrClosed when closing, nil
// when a job would be taken. The answer may be stale by the time Do runs.
func (q *Queue) Check() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return ErrClosed
	}
	if q.waiting.Len()+q.runningCount() > q.size {
		return &QueueFullError{Waiting: q.waiting.Len(), RetryAfter: q.retryAfterLocked()}
	}
	return nil
}

// Fairness: the worker takes the oldest job of the owner it served least
// recently (owners it never served first), so owners take turns however
// many jobs one of them queued; within an owner, jobs run in order.

type ownerKey struct{}

// WithOwner tags ctx with the owner of the jobs queued under it (an API
// key id) for the queue's fairness.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

func ownerFrom(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}

// nextLocked picks the job to run next.
func (q *Queue) nextLocked() *list.Element {
	best := q.waiting.Front()
	bestServed := q.served[best.Value.(*queuedJob).owner]
	seen := map[string]bool{best.Value.(*queuedJob).owner: true}
	for e := best.Next(); e != nil && bestServed > 0; e = e.Next() {
		o := e.Value.(*queuedJob).owner
		if seen[o] {
			continue // only an owner's oldest job competes
		}
		seen[o] = true
		if s := q.served[o]; s < bestServed {
			best, bestServed = e, s
		}
	}
	return best
}

// waitingOf counts owner's waiting jobs.
func (q *Queue) waitingOf(owner string) int {
	n := 0
	for e := q.waiting.Front(); e != nil; e = e.Next() {
		if e.Value.(*queuedJob).owner == owner {
			n++
		}
	}
	return n
}
