package models

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"time"
)

// ErrModelBroken: the model validated but its files failed to load; it is
// retried when they change or after a back-off, and the others go on.
var ErrModelBroken = errors.New("model failed to load")

// Back-off of a model that failed to load: the first retry after
// DefaultBrokenBackoff, doubling up to MaxBrokenBackoff. A change to any of
// its files retries at once.
const (
	DefaultBrokenBackoff = 30 * time.Second
	MaxBrokenBackoff     = 10 * time.Minute
)

// ModelBrokenError is ErrModelBroken for one model: why, and when the next
// load will be tried.
type ModelBrokenError struct {
	ID      string
	Err     error
	RetryAt time.Time
}

func (e *ModelBrokenError) Error() string {
	return fmt.Sprintf("model %s failed to load: %v", e.ID, e.Err)
}

// Unwrap makes both ErrModelBroken and the load's own error match.
func (e *ModelBrokenError) Unwrap() []error { return []error{ErrModelBroken, e.Err} }

// loadFailure is a model's last load error and when to try again.
type loadFailure struct {
	err      error
	files    uint64 // folderStamp when it failed
	backoff  time.Duration
	retryAt  time.Time
	failures int
}

// markBroken records a load failure of e and answers it as the request's
// error; the next attempt waits for the back-off (doubled on each failure)
// or a change to its files.
func (r *Registry) markBroken(e *entry, err error) error {
	stamp := folderStamp(e.info.Dir)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == nil {
		r.failures = map[*entry]*loadFailure{}
	}
	f := r.failures[e]
	if f == nil {
		f = &loadFailure{backoff: r.brokenBackoff}
		r.failures[e] = f
	} else {
		f.backoff = min(2*f.backoff, max(MaxBrokenBackoff, r.brokenBackoff))
	}
	f.err, f.files, f.failures, f.retryAt = err, stamp, f.failures+1, now.Add(f.backoff)
	r.log.Error("model failed to load; serving the others", "id", e.info.ID, "err", err, "retry_in", f.backoff)
	return &ModelBrokenError{ID: e.info.ID, Err: err, RetryAt: f.retryAt}
}

// clearBroken forgets e's failure after a successful load.
func (r *Registry) clearBroken(e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.failures[e]; ok {
		delete(r.failures, e)
		r.log.Info("model loads again", "id", e.info.ID)
	}
}

// checkBroken answers *ModelBrokenError while e is broken and no retry is
// due. A retry is due once the back-off passed or e's files changed; the
// request that finds it due tries the load, and the others keep getting
// the error until that attempt settles (the retry time moves on).
func (r *Registry) checkBroken(e *entry) error {
	r.mu.Lock()
	f := r.failures[e]
	r.mu.Unlock()
	if f == nil {
		return nil
	}
	stamp := folderStamp(e.info.Dir) // outside the lock: it reads the disk
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures[e] != f {
		return nil // settled meanwhile
	}
	if now.Before(f.retryAt) && stamp == f.files {
		return &ModelBrokenError{ID: e.info.ID, Err: f.err, RetryAt: f.retryAt}
	}
	// This request retries; hold the others off while it does.
	f.files, f.retryAt = stamp, now.Add(f.backoff)
	return nil
}

// lastLoadFailed answers *ModelBrokenError while e's last load failed,
// without claiming a retry (readiness asks; requests retry).
func (r *Registry) lastLoadFailed(e *entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.failures[e]; f != nil {
		return &ModelBrokenError{ID: e.info.ID, Err: f.err, RetryAt: f.retryAt}
	}
	return nil
}

// loadFailures lists the models that validated but failed to load.
// Callers hold r.mu.
func (r *Registry) loadFailuresLocked() []Broken {
	var out []Broken
	for e, f := range r.failures {
		if r.entries[e.info.ID] != e {
			continue // dropped by a rescan
		}
		out = append(out, Broken{ID: e.info.ID, Err: fmt.Errorf("%w: %w", ErrModelBroken, f.err), Load: true, RetryAt: f.retryAt})
	}
	return out
}

// folderStamp fingerprints the names, sizes and modification times of the
// files under dir: cheap enough to check on each request for a broken
// model, and it changes when a file is replaced, truncated or rewritten.
func folderStamp(dir string) uint64 {
	h := fnv.New64a()
	const most = 10_000 // a model folder has tens of files; bound a strange one
	n := 0
	// A walk error (the folder vanished) leaves a stamp that differs from
	// a readable folder's, which is what a retry needs to know.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || n >= most {
			return filepath.SkipDir
		}
		n++
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return h.Sum64()
}

func cmpOr(d, fallback time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return fallback
}
