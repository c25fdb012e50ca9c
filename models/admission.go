package models

// CheckQueue answers what the GPU queue would answer a job enqueued now
// (*QueueFullError, ErrClosed or nil), so the server refuses a request
// before it decodes anything the GPU could not take.
func (r *Registry) CheckQueue() error { return r.queue.Check() }
