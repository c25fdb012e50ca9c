package scheduler

// Names lists (for tests) the scheduler names New accepts (besides "").
func Names() []string { return append([]string(nil), names...) }
