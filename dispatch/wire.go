package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// wireVersion is the version of every message this package writes; a
// reader refuses any other, so mixed versions fail loudly, not subtly.
const wireVersion = 1

// Bounds on what a message from the network may hold. Everything a
// gateway or worker decodes comes from the network, so it is checked
// against these before use.
const (
	maxJobBytes    = 256 << 10
	maxAdvertBytes = 1 << 20
	maxTextBytes   = 64 << 10
	maxIDBytes     = 255
	maxModels      = 512
	maxDimension   = 8192
	maxSteps       = 10000 // progress counters; requests are bounded by spec.MaxSteps
)

// jobMsg is one generation request on a job stream. The seed is always
// fixed (HasSeed): a redelivered job must draw the same noise.
type jobMsg struct {
	V              int     `json:"v"`
	ID             string  `json:"id"`
	Model          string  `json:"model"`
	Deadline       int64   `json:"deadline_ms,omitempty"` // unix ms; 0 = none
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	Width          int     `json:"width,omitempty"`
	Height         int     `json:"height,omitempty"`
	Steps          int     `json:"steps,omitempty"`
	Guidance       float64 `json:"guidance,omitempty"`
	HasGuidance    bool    `json:"has_guidance,omitempty"`
	Scheduler      string  `json:"scheduler,omitempty"`
	Seed           uint64  `json:"seed"`
	N              int     `json:"n,omitempty"`
	Strength       float64 `json:"strength,omitempty"`
	HasStrength    bool    `json:"has_strength,omitempty"`
	// Input names the object holding the init image and mask, if any.
	Input   string `json:"input,omitempty"`
	HasInit bool   `json:"has_init,omitempty"`
	HasMask bool   `json:"has_mask,omitempty"`
}

func newJobMsg(id, model string, req spec.Request, deadline time.Time) jobMsg {
	j := jobMsg{V: wireVersion, ID: id, Model: model, Prompt: req.Prompt, NegativePrompt: req.NegativePrompt,
		Width: req.Width, Height: req.Height, Steps: req.Steps, Guidance: req.Guidance, HasGuidance: req.HasGuidance,
		Scheduler: req.Scheduler, Seed: req.Seed, N: req.N, Strength: req.Strength, HasStrength: req.HasStrength,
		HasInit: req.InitImage != nil, HasMask: req.Mask != nil}
	if !deadline.IsZero() {
		j.Deadline = deadline.UnixMilli()
	}
	if j.HasInit || j.HasMask {
		j.Input = inputObject(id)
	}
	return j
}

// request is the spec.Request the job describes, without its input images.
func (j jobMsg) request() spec.Request {
	return spec.Request{Prompt: j.Prompt, NegativePrompt: j.NegativePrompt, Width: j.Width, Height: j.Height,
		Steps: j.Steps, Guidance: j.Guidance, HasGuidance: j.HasGuidance, Scheduler: j.Scheduler,
		Seed: j.Seed, HasSeed: true, N: j.N, Strength: j.Strength, HasStrength: j.HasStrength}
}

func (j jobMsg) deadline() time.Time {
	if j.Deadline == 0 {
		return time.Time{}
	}
	return time.UnixMilli(j.Deadline)
}

// decodeJob reads a job from the network and checks every bound that
// could cost memory or time before the registry validates the rest.
func decodeJob(data []byte) (jobMsg, error) {
	var j jobMsg
	if err := decodeJSON(data, maxJobBytes, &j); err != nil {
		return jobMsg{}, err
	}
	if err := j.check(); err != nil {
		return jobMsg{}, fmt.Errorf("%w: job: %w", ErrBadMessage, err)
	}
	return j, nil
}

func (j jobMsg) check() error {
	switch {
	case j.V != wireVersion:
		return fmt.Errorf("version %d, want %d", j.V, wireVersion)
	case !validJobID(j.ID):
		return fmt.Errorf("job id %q is not 32 hex digits", j.ID)
	case j.Model == "" || len(j.Model) > maxIDBytes:
		return fmt.Errorf("model id of %d bytes", len(j.Model))
	case len(j.Prompt) > maxTextBytes || len(j.NegativePrompt) > maxTextBytes || len(j.Scheduler) > maxIDBytes:
		return fmt.Errorf("text field too long")
	case j.Width < 0 || j.Width > maxDimension || j.Height < 0 || j.Height > maxDimension:
		return fmt.Errorf("size %dx%d out of range", j.Width, j.Height)
	case j.Steps < 0 || j.Steps > spec.MaxSteps:
		return fmt.Errorf("steps %d out of range", j.Steps)
	case j.N < 0 || j.N > spec.MaxImages:
		return fmt.Errorf("n %d out of range", j.N)
	case j.Seed > spec.MaxSeed:
		return fmt.Errorf("seed %d out of range", j.Seed)
	case !finite(j.Guidance) || !finite(j.Strength):
		return fmt.Errorf("guidance or strength not finite")
	case (j.HasInit || j.HasMask) != (j.Input != ""):
		return fmt.Errorf("input images without an input object, or the reverse")
	case j.Input != "" && j.Input != inputObject(j.ID):
		return fmt.Errorf("input object %q is not this job's", j.Input)
	}
	return nil
}

func validJobID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// progressMsg is one denoising step of a running job.
type progressMsg struct {
	Step  int `json:"step"`
	Total int `json:"total"`
}

func decodeProgress(data []byte) (progressMsg, error) {
	var p progressMsg
	if err := decodeJSON(data, 256, &p); err != nil {
		return progressMsg{}, err
	}
	if p.Total < 1 || p.Total > maxSteps || p.Step < 0 || p.Step > p.Total {
		return progressMsg{}, fmt.Errorf("%w: progress %d/%d", ErrBadMessage, p.Step, p.Total)
	}
	return p, nil
}

// advert is what a worker tells the gateways about itself, refreshed each
// heartbeat in the workers bucket under its id.
type advert struct {
	V        int           `json:"v"`
	Worker   string        `json:"worker"`
	Host     string        `json:"host,omitempty"`
	Started  time.Time     `json:"started"`
	TTLms    int64         `json:"ttl_ms"` // dead when not refreshed within this
	Models   []models.Info `json:"models"`
	Resident []string      `json:"resident,omitempty"`
	Busy     bool          `json:"busy,omitempty"`
	Stats    models.Stats  `json:"stats"`
}

func decodeAdvert(data []byte) (advert, error) {
	var a advert
	if err := decodeJSON(data, maxAdvertBytes, &a); err != nil {
		return advert{}, err
	}
	if err := a.check(); err != nil {
		return advert{}, fmt.Errorf("%w: advert: %w", ErrBadMessage, err)
	}
	return a, nil
}

func (a advert) check() error {
	switch {
	case a.V != wireVersion:
		return fmt.Errorf("version %d, want %d", a.V, wireVersion)
	case a.Worker == "" || len(a.Worker) > maxIDBytes:
		return fmt.Errorf("worker id of %d bytes", len(a.Worker))
	case a.TTLms <= 0 || a.TTLms > int64(time.Hour/time.Millisecond):
		return fmt.Errorf("ttl %dms out of range", a.TTLms)
	case len(a.Models) > maxModels || len(a.Resident) > maxModels:
		return fmt.Errorf("%d models", len(a.Models))
	}
	for _, m := range a.Models {
		if m.ID == "" || len(m.ID) > maxIDBytes {
			return fmt.Errorf("model id of %d bytes", len(m.ID))
		}
	}
	return nil
}

func (a advert) ttl() time.Duration { return time.Duration(a.TTLms) * time.Millisecond }

// decodeJSON decodes one JSON value of at most limit bytes, nothing after.
func decodeJSON(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(data), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	return nil
}
