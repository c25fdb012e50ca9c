package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults shared by both sides.
const (
	DefaultMaxQueue   = 64
	DefaultAckWait    = 10 * time.Second
	DefaultMaxDeliver = 5
	DefaultResultTTL  = 15 * time.Minute
)

// ensureResults creates (or adopts) the object store for results and
// inputs. Objects outlive a gateway that died before reading its result
// only by the TTL.
func ensureResults(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (jetstream.ObjectStore, error) {
	os, err := retry(ctx, func() (jetstream.ObjectStore, error) {
		return js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: ResultsBucket, Description: "sdgate job inputs and results", TTL: ttl, Storage: jetstream.FileStorage,
		})
	}, func() (jetstream.ObjectStore, error) { return js.ObjectStore(ctx, ResultsBucket) })
	if err != nil {
		return nil, fmt.Errorf("dispatch: object store %s: %w", ResultsBucket, err)
	}
	return os, nil
}

// ensureWorkers creates (or adopts) the advertisement bucket. Entries
// expire after ttl in storage; liveness is judged by each advert's own TTL.
func ensureWorkers(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := retry(ctx, func() (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: WorkersBucket, Description: "sdgate worker advertisements", TTL: ttl, Storage: jetstream.FileStorage,
		})
	}, func() (jetstream.KeyValue, error) { return js.KeyValue(ctx, WorkersBucket) })
	if err != nil {
		return nil, fmt.Errorf("dispatch: kv %s: %w", WorkersBucket, err)
	}
	return kv, nil
}

// QueueConfig is a model's job stream: every worker that serves the model
// declares it, so give every worker the same values.
type QueueConfig struct {
	MaxQueue   int           // jobs queued or running per model (default 64)
	AckWait    time.Duration // redelivery after a silent worker (default 10s)
	MaxDeliver int           // deliveries of one job before it is dropped (default 5)
	// MaxAge drops jobs older than this (default 1h): a job no worker
	// could finish (it kills every worker it reaches) would otherwise hold
	// a queue slot after its last delivery if its gateway died too.
	MaxAge time.Duration
}

func (c *QueueConfig) fill() {
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
}

// ensureQueue creates or updates model's work-queue stream and its one
// shared pull consumer.
func ensureQueue(ctx context.Context, js jetstream.JetStream, model string, c QueueConfig) (jetstream.Stream, jetstream.Consumer, error) {
	cfg := jetstream.StreamConfig{
		Name:        streamName(model),
		Description: "sdgate jobs for model " + model,
		Subjects:    []string{jobSubject(model)},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxMsgs:     int64(c.MaxQueue),
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.MaxAge,
		Duplicates:  time.Minute,
	}
	stream, err := retry(ctx, func() (jetstream.Stream, error) { return js.CreateOrUpdateStream(ctx, cfg) },
		func() (jetstream.Stream, error) { return js.Stream(ctx, cfg.Name) })
	if err != nil {
		return nil, nil, fmt.Errorf("dispatch: stream for %s: %w", model, err)
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: -1,
	}
	cons, err := retry(ctx, func() (jetstream.Consumer, error) { return stream.CreateOrUpdateConsumer(ctx, ccfg) },
		func() (jetstream.Consumer, error) { return stream.Consumer(ctx, consumerName) })
	if err != nil {
		return nil, nil, fmt.Errorf("dispatch: consumer for %s: %w", model, err)
	}
	return stream, cons, nil
}

// retry runs a create-or-update a few times: processes starting together
// race to create the same asset, and the loser's create fails (older
// servers say "subjects overlap") until it sees the winner's. If it still
// fails, an asset that exists is adopted as it is.
func retry[T any](ctx context.Context, create, adopt func() (T, error)) (T, error) {
	var err error
	for attempt := range 3 {
		var v T
		if v, err = create(); err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	if v, aerr := adopt(); aerr == nil {
		return v, nil
	}
	var zero T
	return zero, err
}
