package spec

// BatchItem is one request of a batch run as one UNet call per step.
// Cancelled reports why the item's caller stopped waiting (nil while it
// waits): the pipeline drops the item at the next step and goes on with
// the others.
type BatchItem struct {
	Request   Request
	Cancelled func() error
}

// BatchResult is what one item of a batch produced. Result.Total and
// Result.ORT are the item's share of the batch's time (see sd's batch.go),
// so the shares of a batch add up to its wall time.
type BatchResult struct {
	Result Result
	Err    error
}
