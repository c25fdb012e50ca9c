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
	os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ResultsBucket, Description: "sdgate job inputs and results", TTL: ttl, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: object store %s: %w", ResultsBucket, err)
	}
	return os, nil
}

// ensureWorkers creates (or adopts) the advertisement bucket. Entries
// expire after ttl in storage; liveness is judged by each advert's own TTL.
func ensureWorkers(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: WorkersBucket, Description: "sdgate worker advertisements", TTL: ttl, Storage: jetstream.FileStorage,
	})
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
}

// ensureQueue creates or updates model's work-queue stream and its one
// shared pull consumer.
func ensureQueue(ctx context.Context, js jetstream.JetStream, model string, c QueueConfig) (jetstream.Stream, jetstream.Consumer, error) {
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName(model),
		Description: "sdgate jobs for model " + model,
		Subjects:    []string{jobSubject(model)},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxMsgs:     int64(c.MaxQueue),
		Discard:     jetstream.DiscardNew,
		Duplicates:  time.Minute,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dispatch: stream for %s: %w", model, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: -1,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dispatch: consumer for %s: %w", model, err)
	}
	return stream, cons, nil
}
