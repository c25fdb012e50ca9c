package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// imageJob is one image request on its way to the GPU, whatever endpoint
// it came from: what to run, how to encode it, and what keys the cache.
type imageJob struct {
	Endpoint string // generations, edits, variations (metering)
	Target   Target
	Plan     GenerationPlan
	// Cache holds the pixel-determining inputs specific to the endpoint
	// (operation, image and mask digests, strength); produce fills the rest.
	Cache cache.Params
	// stream is set for stream=true: response headers go through it.
	stream *sseStream
	// keyed, when set, holds the job's cache params and key, made with its
	// plan (prepared.go); run computes them otherwise.
	keyed *plannedGeneration
}

// header sets a response header, through the stream when there is one.
func (j *imageJob) header(c *gin.Context, key, value string) {
	if j.stream != nil {
		j.stream.header(key, value)
		return
	}
	c.Header(key, value)
}

// produced is what the client gets: the encoded images and, for the
// response body, their seeds and the prompt that conditioned them.
type produced struct {
	images   [][]byte
	b64      [][]byte       // the images in base64 when the cache kept it, else nil
	payloads []imagePayload // response_format=url: the stored images' URLs
	result   spec.Result    // Images carry seeds only; Prompt is the revised prompt
	outcome  cache.Outcome
}

// produce runs a job under its usage record (metered, metering.go): the
// result cache (identical requests run once), the GPU, the encode and the
// delivery (a URL store that fails leaves the client without images, so
// the record then counts none).
func (s *Server) produce(c *gin.Context, job *imageJob) (produced, error) {
	return s.metered(c, job, func(usage *auth.Usage) (produced, error) {
		out, err := s.run(c, job, usage)
		if err != nil {
			return produced{}, err
		}
		if job.Plan.ResponseFormat != compat.ResponseFormatURL {
			return out, nil
		}
		if out.payloads, err = s.storeURLs(c.Request, job.Plan, out.images); err != nil {
			usage.Images, usage.Pixels = 0, 0
			return produced{}, err
		}
		return out, nil
	})
}

// run is the produce step: the cache flight and what it cost, into usage
// and the response headers.
func (s *Server) run(c *gin.Context, job *imageJob, usage *auth.Usage) (produced, error) {
	ctx := c.Request.Context()
	if k := callerKey(c); k != nil {
		ctx = models.WithOwner(ctx, k.ID) // the GPU queue's fairness is per key
	}
	plan := job.Plan
	var params cache.Params
	var key cache.Key
	if job.keyed != nil {
		params, key = job.keyed.params, job.keyed.key
	} else {
		params = s.cacheParams(job)
		key = cache.KeyOf(params)
	}
	// A hit is answered before the compute (and what it captures) is built.
	entry, hit := s.opts.Cache.Lookup(ctx, params, key)
	outcome, ran := cache.Hit, spec.Result{}
	var err error
	if !hit {
		stats := &flightStats{}
		entry, outcome, err = s.opts.Cache.Do(ctx, params, s.compute(job.Target.ModelID, plan, stats))
		ran = stats.get()
	}
	job.header(c, "X-Cache", outcome.Header())
	if ran.ModelLoad > 0 {
		job.header(c, "X-Model-Load-Ms", fmt.Sprint(ran.ModelLoad.Milliseconds()))
	}
	c.Set(logJobKey, jobLog{model: job.Target.ModelID, cache: outcome.String(),
		queueWait: ran.QueueWait, generation: ran.Total, modelLoad: ran.ModelLoad})

	usage.GPUSeconds = ran.Total.Seconds()
	usage.Steps = ran.StepsRun * len(ran.Images)
	if err != nil {
		return produced{}, err
	}
	usage.Images = len(entry.Images)
	usage.Pixels = int64(usage.Images) * int64(plan.Width) * int64(plan.Height)
	usage.Cached = outcome.Cached()
	if usage.Cached {
		usage.GPUSeconds, usage.Steps = 0, 0
	}
	out := produced{images: entry.Images, b64: entry.B64, outcome: outcome,
		result: spec.Result{Prompt: entry.RevisedPrompt, Images: make([]spec.Image, len(entry.Seeds))}}
	for i, seed := range entry.Seeds {
		out.result.Images[i].Seed = seed
	}
	return out, nil
}

// compute is the pipeline run behind a cache miss. It may run in the
// cache's flight goroutine and outlive the request (a coalesced waiter
// keeps it going): it touches no request state, only the flight-owned
// stats.
func (s *Server) compute(modelID string, plan GenerationPlan, stats *flightStats) cache.ComputeFunc {
	return func(ctx context.Context) (cache.Entry, error) {
		res, err := s.gen.Generate(ctx, modelID, plan.SD)
		stats.set(res)
		if err != nil {
			return cache.Entry{}, err
		}
		if len(res.Images) != plan.SD.N {
			return cache.Entry{}, fmt.Errorf("generator returned %d images for n=%d", len(res.Images), plan.SD.N)
		}
		s.metrics.observeGeneration(modelID, res)
		images, err := s.encodeAll(plan, res)
		if err != nil {
			return cache.Entry{}, err
		}
		e := cache.Entry{Images: images, ContentType: contentTypes[plan.OutputFormat], RevisedPrompt: res.Prompt, Elapsed: res.Total}
		if plan.ResponseFormat == compat.ResponseFormatB64JSON {
			e.B64 = make([][]byte, len(images))
			for i, img := range images {
				e.B64[i] = make([]byte, base64.StdEncoding.EncodedLen(len(img)))
				base64.StdEncoding.Encode(e.B64[i], img)
			}
		}
		for _, img := range res.Images {
			e.Seeds = append(e.Seeds, img.Seed)
		}
		return e, nil
	}
}

// flightStats carries what one run of the pipeline cost from the compute
// (possibly on another goroutine) to the request that started it.
type flightStats struct {
	mu  sync.Mutex
	res spec.Result
}

func (f *flightStats) set(res spec.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res = spec.Result{Total: res.Total, QueueWait: res.QueueWait, ModelLoad: res.ModelLoad,
		StepsRun: res.StepsRun, Images: make([]spec.Image, len(res.Images))}
}

func (f *flightStats) get() spec.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.res
}

// logJobKey holds a jobLog for the access log line.
const logJobKey = "sdgate.job"

// jobLog is what the access log says about an image request.
type jobLog struct {
	model                            string
	cache                            string
	queueWait, generation, modelLoad time.Duration
}

// cacheParams completes a job's cache key with everything the plan fixes.
func (s *Server) cacheParams(job *imageJob) cache.Params {
	p := job.Cache
	r := job.Plan.SD
	p.Engine = s.opts.Engine
	p.ModelID = job.Target.ModelID
	p.ModelDigest = job.Target.Info.Digest
	if p.Operation == "" {
		p.Operation = job.Endpoint
	}
	if job.Plan.Transparent { // the same pixels with the input's alpha kept
		p.Operation += "/transparent"
	}
	p.Prompt, p.NegativePrompt = r.Prompt, r.NegativePrompt
	p.Seed, p.HasSeed = r.Seed, job.Plan.ExplicitSeed
	p.Steps, p.Guidance, p.HasGuidance, p.Scheduler = r.Steps, r.Guidance, r.HasGuidance, r.Scheduler
	p.Width, p.Height, p.N = r.Width, r.Height, r.N
	if r.HasStrength {
		p.Strength = r.Strength
	}
	p.OutputWidth, p.OutputHeight = job.Plan.Width, job.Plan.Height
	if f := job.Target.Info.Family; f != "" { // the digest covers it too; say it for other instances' sake
		p.Extra = maps.Clone(p.Extra)
		if p.Extra == nil {
			p.Extra = map[string]string{}
		}
		p.Extra["family"] = f
	}
	p.OutputFormat, p.OutputCompression = job.Plan.OutputFormat, job.Plan.Compression
	p.Extra = withLoRAs(p.Extra, loraRefs(job.Target.Info, r.LoRAs))
	return p
}

// encodeAll resizes each image to the delivered size (putting an edit's
// kept pixels back exactly) and encodes it.
func (s *Server) encodeAll(plan GenerationPlan, res spec.Result) ([][]byte, error) {
	enc := newImageEncoder()
	out := make([][]byte, len(res.Images))
	for i, img := range res.Images {
		if img.Image == nil {
			return nil, fmt.Errorf("generator returned no pixels for image %d", i)
		}
		data, err := enc.encode(plan.finish(img.Image), plan.OutputFormat, plan.Compression)
		if err != nil {
			return nil, err
		}
		out[i] = bytes.Clone(data) // the cache keeps it: no spare capacity
	}
	return out, nil
}

// storeURLs puts the encoded images in the URL store and answers their
// URLs; a store that fails is errImageStore.
func (s *Server) storeURLs(r *http.Request, plan GenerationPlan, images [][]byte) ([]imagePayload, error) {
	names, _, err := s.store.PutAll(r.Context(), images, contentTypes[plan.OutputFormat], plan.OutputFormat)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errImageStore, err)
	}
	payloads := make([]imagePayload, len(images))
	for i, name := range names {
		payloads[i].URL = s.publicBaseURL(r) + imageFilesPath + name
	}
	return payloads, nil
}

// payloadsOf is what a response carries of out's images: the URLs produce
// stored, else the images in base64.
func (s *Server) payloadsOf(out produced) []imagePayload {
	s.metrics.images.Add(float64(len(out.images)))
	if out.payloads != nil {
		return out.payloads
	}
	payloads := make([]imagePayload, len(out.images))
	for i, data := range out.images {
		if out.b64 != nil {
			payloads[i].B64 = string(out.b64[i])
		} else {
			payloads[i].B64 = base64.StdEncoding.EncodeToString(data)
		}
	}
	return payloads
}
