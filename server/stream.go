package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
)

// sseStream is one streamed answer (stream=true): the partial images the
// pipeline hands over while it runs, then one completed event per image.
// Partial images arrive on the GPU worker; send never blocks it (a preview
// the writer cannot take yet is dropped, as upstream allows fewer partial
// images than asked). One goroutine writes them while the handler waits
// for the generation; mu orders those writes against the headers the
// handler still sets, so the header map is never touched concurrently.
type sseStream struct {
	c     *gin.Context
	plan  GenerationPlan
	edit  bool
	now   func() int64
	enc   *imageEncoder
	parts chan spec.Partial

	mu      sync.Mutex
	closed  bool // no more partial images are taken
	started bool // the status and headers are on the wire
	broken  bool // a write failed: the client left
	sent    int  // partial images written
}

func newSSEStream(c *gin.Context, plan GenerationPlan, edit bool, now func() int64) *sseStream {
	return &sseStream{c: c, plan: plan, edit: edit, now: now, enc: newImageEncoder(),
		parts: make(chan spec.Partial, spec.MaxPartialImages)}
}

// send is spec.Request.Partial: it may run after the request has ended
// (a coalesced flight outliving it), and then does nothing.
func (s *sseStream) send(p spec.Partial) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.parts <- p:
	default:
	}
}

// header sets a response header unless the stream has already begun.
func (s *sseStream) header(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.c.Header(key, value)
	}
}

// writePartials writes partial images until close; run it on its own goroutine.
func (s *sseStream) writePartials(done chan<- struct{}) {
	defer close(done)
	for p := range s.parts {
		data, err := s.enc.encode(s.plan.finish(p.Image.Image), s.plan.OutputFormat, s.plan.Compression)
		if err != nil {
			continue // a preview that cannot be encoded is skipped, the final image will tell
		}
		s.mu.Lock()
		index := s.sent
		ev := s.event(compat.EventImageGenerationPartial, compat.EventImageEditPartial, base64.StdEncoding.EncodeToString(data))
		ev.PartialImageIndex, ev.Seed = &index, p.Image.Seed
		if s.writeLocked(ev.Type, ev) {
			s.sent++
		}
		s.mu.Unlock()
	}
}

// close stops taking partial images.
func (s *sseStream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.parts)
	}
}

func (s *sseStream) event(gen, edit, b64 string) compat.ImageStreamEvent {
	typ := gen
	if s.edit {
		typ = edit
	}
	return compat.ImageStreamEvent{Type: typ, B64JSON: b64, CreatedAt: s.now(),
		Size: compat.FormatSize(s.plan.Width, s.plan.Height), Quality: s.plan.Quality,
		Background: s.plan.Background, OutputFormat: s.plan.OutputFormat}
}

// writeLocked sends one event, starting the stream first; false once the
// client is gone.
func (s *sseStream) writeLocked(name string, v any) bool {
	if s.broken {
		return false
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false
	}
	w := s.c.Writer
	if !s.started {
		s.started = true
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		s.broken = true
		return false
	}
	w.Flush()
	return true
}

// completed writes one completed event per image, each with that image's usage.
func (s *sseStream) completed(res spec.Result, payloads []imagePayload, textTokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range payloads {
		usage := ToUsage(s.plan, 1, textTokens)
		ev := s.event(compat.EventImageGenerationCompleted, compat.EventImageEditCompleted, p.B64)
		ev.Seed, ev.Usage = res.Images[i].Seed, &usage
		if !s.writeLocked(ev.Type, ev) {
			s.c.Abort() // the client left mid-stream; nothing more to say
			return
		}
	}
}

// fail reports err: as an ordinary error answer when nothing was streamed
// yet (false: the caller's writeError does it), else as an error event.
func (s *Server) failStream(st *sseStream, err error) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.started {
		return false
	}
	st.c.Error(err) // for the access log
	e := s.classify(err, st.c.Request.Context().Err() != nil)
	if e != nil {
		body := compat.NewErrorResponse(e.typ, e.message, e.param, e.code).Error
		st.writeLocked(compat.EventError, compat.StreamErrorEvent{Type: compat.EventError, Error: body})
	}
	st.c.Abort()
	return true
}

// streamJob runs a job for stream=true: partial images as the pipeline
// makes them (when partial_images asks), then the completed events. A
// client that leaves cancels the request's ctx and with it the generation,
// within one denoising step; metering records what ran.
func (s *Server) streamJob(c *gin.Context, job *imageJob, req compat.ImageGenerationRequest) error {
	st := newSSEStream(c, job.Plan, job.Endpoint == "edits", func() int64 { return s.opts.Now().Unix() })
	job.stream = st
	if job.Plan.PartialImages > 0 {
		job.Plan.SD.PartialImages, job.Plan.SD.Partial = job.Plan.PartialImages, st.send
	}
	done := make(chan struct{})
	go st.writePartials(done)
	out, err := s.produce(c, job)
	st.close()
	<-done
	if err != nil {
		if s.failStream(st, err) {
			return nil
		}
		return err
	}
	st.completed(out.result, s.payloadsOf(out), s.textTokens(req, out.result))
	return nil
}
