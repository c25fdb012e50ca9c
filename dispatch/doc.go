// Package dispatch is sdgate's job transport for scale-out: gateways publish
// image jobs to NATS JetStream and GPU workers pull, run and answer them.
// It is the only package that knows NATS; the HTTP server sees a Gateway as
// one more server.Backend, and a Worker wraps a *models.Registry.
//
// Subjects and buckets (model ids are escaped into subject tokens, Token):
//
//	sdgate.jobs.<model>      work-queue stream SDGATE_JOBS_<model>, file storage,
//	                         MaxMsgs with DiscardNew: a full queue refuses the publish
//	sdgate.progress.<job>    core NATS, one message per denoising step
//	sdgate.results.<job>     core NATS: an inline result (request, the gateway
//	                         answers "ok") or the "result object is there" hint
//	sdgate.cancel.<job>      core NATS, the gateway's client left
//	sdgate-results           object store: res-<job> (result) and in-<job> (init image, mask)
//	sdgate-workers           KV bucket: one advertisement per worker, refreshed each heartbeat
//
// Delivery: workers pull one job at a time with explicit ack. The ack
// deadline (AckWait) is short and kept alive by InProgress while a job runs
// (each step, and on a timer for model loads), so a worker that dies has its
// job redelivered to another after one AckWait. The gateway fixes the seed
// before publishing, so a redelivered job yields identical pixels; results
// are keyed by job id and the gateway takes the first, so a duplicate run
// changes nothing. Metering is the gateway's, once per HTTP request,
// whatever the deliveries underneath.
//
// Resident first: a worker pulls at once from the streams of the models it
// has loaded. For a model it would have to load (cold), it makes only
// non-waiting pulls, and only once the stream has held work (undelivered
// or unacknowledged) for ColdGrace: a new job goes to a warm worker's
// waiting pull first, and cold workers absorb what is left waiting or
// handed back.
package dispatch
