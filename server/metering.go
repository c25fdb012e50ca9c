package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/compat"
)

// metered runs one image request's step under its admission and its usage
// record: admission against the caller's key (quota and rate limits)
// first, then step, then one durable usage record written before the
// response — for failed, cancelled and panicking requests too. step fills
// what it cost into the record.
func (s *Server) metered(c *gin.Context, job *imageJob, step func(*auth.Usage) (produced, error)) (produced, error) {
	ctx := c.Request.Context()
	adm, early := takeAdmission(c)
	if !early {
		var err error
		if adm, err = s.admitTarget(c, job.Target, job.Plan.SD.N); err != nil {
			return produced{}, err
		}
	}
	finish := func(u auth.Usage) error {
		if adm == nil { // no gate: the embedder meters elsewhere
			return nil
		}
		return adm.Finish(context.WithoutCancel(ctx), u)
	}
	usage := auth.Usage{RequestID: requestID(c), Endpoint: job.Endpoint, Model: job.Target.ModelID, Status: http.StatusOK,
		Inputs: job.Cache.ImageDigests, Family: job.Target.Info.Family}
	if sd := job.Plan.SD; sd.Width > 0 && sd.Height > 0 {
		usage.Generated = compat.FormatSize(sd.Width, sd.Height)
	}
	if job.Cache.MaskDigest != "" {
		usage.Inputs = append(append([]string(nil), usage.Inputs...), job.Cache.MaskDigest)
	}
	if refs := loraRefs(job.Target.Info, job.Plan.SD.LoRAs); refs != nil {
		usage.Inputs = append(append([]string(nil), usage.Inputs...), refs...)
	}
	// A panic in step must still settle the admission (release the reserved
	// quota, write the record) before recovery answers 500.
	finished := false
	defer func() {
		if p := recover(); p != nil {
			if !finished {
				usage.Status = http.StatusInternalServerError
				if err := finish(usage); err != nil {
					s.log.Error("usage record lost", "request_id", usage.RequestID, "err", err)
				}
			}
			panic(p)
		}
	}()

	out, err := step(&usage)
	finished = true
	if err != nil {
		usage.Status = statusOf(s.classify(err, ctx.Err() != nil))
		if finishErr := finish(usage); finishErr != nil {
			s.log.Error("usage record lost", "request_id", usage.RequestID, "err", finishErr)
		}
		return produced{}, err
	}
	// Durable before the client can see its images.
	if err := finish(usage); err != nil {
		return produced{}, fmt.Errorf("meter usage: %w", err)
	}
	return out, nil
}

// statusOf is the status an error answers (499 when the client left).
func statusOf(e *httpError) int {
	if e == nil {
		return StatusClientClosedRequest
	}
	return e.status
}

// admit authorises a request for images of model against the caller's key
// (nil with --no-auth: metered without a key) and sets its rate headers.
func (s *Server) admit(c *gin.Context, model string, images int) (*auth.Admission, error) {
	if s.opts.Gate == nil {
		return nil, nil
	}
	adm, err := s.opts.Gate.Admit(c.Request.Context(), callerKey(c), model, images)
	if err != nil {
		var rl *auth.RateLimitError
		if errors.As(err, &rl) {
			rl.Headers.Apply(c.Header)
		}
		return nil, err
	}
	adm.Headers.Apply(c.Header)
	return adm, nil
}
