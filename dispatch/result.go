package dispatch

import (
	"encoding/json"
	"fmt"
	"image"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// resultHeader is a result blob's header: an error, or the spec.Result
// without pixels (the frames carry one image each, in order).
type resultHeader struct {
	V         int        `json:"v"`
	Job       string     `json:"job"`
	Worker    string     `json:"worker,omitempty"`
	Error     *wireError `json:"error,omitempty"`
	Prompt    string     `json:"prompt,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
	Width     int        `json:"width,omitempty"`
	Height    int        `json:"height,omitempty"`
	Steps     int        `json:"steps,omitempty"`
	StepsRun  int        `json:"steps_run,omitempty"`
	Guidance  float64    `json:"guidance,omitempty"`
	Scheduler string     `json:"scheduler,omitempty"`
	ORT       int64      `json:"ort_ns,omitempty"`
	Total     int64      `json:"total_ns,omitempty"`
	ModelLoad int64      `json:"model_load_ns,omitempty"`
	QueueWait int64      `json:"queue_wait_ns,omitempty"`
	Seeds     []uint64   `json:"seeds,omitempty"`
}

// encodeResult packs what the registry returned for job.
func encodeResult(job, worker string, res spec.Result, runErr error) ([]byte, error) {
	h := resultHeader{V: wireVersion, Job: job, Worker: worker, Error: toWire(runErr)}
	var frames [][]byte
	if runErr == nil {
		h.Prompt, h.Truncated, h.Width, h.Height = res.Prompt, res.Truncated, res.Width, res.Height
		h.Steps, h.StepsRun, h.Guidance, h.Scheduler = res.Steps, res.StepsRun, res.Guidance, res.Scheduler
		h.ORT, h.Total, h.ModelLoad, h.QueueWait = int64(res.ORT), int64(res.Total), int64(res.ModelLoad), int64(res.QueueWait)
		for _, img := range res.Images {
			if img.Image == nil {
				return nil, fmt.Errorf("result image without pixels")
			}
			f, err := encodeFrame(img.Image)
			if err != nil {
				return nil, err
			}
			frames = append(frames, f)
			h.Seeds = append(h.Seeds, img.Seed)
		}
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode result header: %w", err)
	}
	return encodeBlob(hdr, frames), nil
}

// decodeResult unpacks a result object for job: the spec.Result, or the
// worker's error as the sentinel the server classifies. A blob that breaks
// a bound is ErrBadMessage.
func decodeResult(job string, data []byte) (spec.Result, string, error) {
	hdr, frames, err := decodeBlob(data)
	if err != nil {
		return spec.Result{}, "", err
	}
	var h resultHeader
	if err := decodeJSON(hdr, maxBlobHeader, &h); err != nil {
		return spec.Result{}, "", err
	}
	bad := func(format string, args ...any) (spec.Result, string, error) {
		return spec.Result{}, "", fmt.Errorf("%w: result: %s", ErrBadMessage, fmt.Sprintf(format, args...))
	}
	switch {
	case h.V != wireVersion:
		return bad("version %d", h.V)
	case h.Job != job:
		return bad("for job %q, want %q", h.Job, job)
	case h.Error != nil && len(frames) > 0:
		return bad("an error with images")
	case h.Error != nil:
		return spec.Result{}, h.Worker, h.Error.err()
	case len(frames) != len(h.Seeds) || len(frames) == 0 || len(frames) > spec.MaxImages:
		return bad("%d images, %d seeds", len(frames), len(h.Seeds))
	case h.Width <= 0 || h.Height <= 0 || h.Width > maxDimension || h.Height > maxDimension:
		return bad("size %dx%d", h.Width, h.Height)
	case len(h.Prompt) > maxTextBytes || len(h.Scheduler) > maxIDBytes || !finite(h.Guidance):
		return bad("bad metadata")
	}
	res := spec.Result{Prompt: h.Prompt, Truncated: h.Truncated, Width: h.Width, Height: h.Height,
		Steps: h.Steps, StepsRun: h.StepsRun, Guidance: h.Guidance, Scheduler: h.Scheduler,
		ORT: nonNegative(h.ORT), Total: nonNegative(h.Total), ModelLoad: nonNegative(h.ModelLoad), QueueWait: nonNegative(h.QueueWait)}
	for i, f := range frames {
		img, err := decodeFrame(f)
		if err != nil {
			return spec.Result{}, "", err
		}
		if b := img.Bounds(); b.Dx() != h.Width || b.Dy() != h.Height {
			return bad("image %d is %dx%d, header says %dx%d", i, b.Dx(), b.Dy(), h.Width, h.Height)
		}
		res.Images = append(res.Images, spec.Image{Image: asRGBA(img), Seed: h.Seeds[i]})
	}
	return res, h.Worker, nil
}

func nonNegative(ns int64) time.Duration { return time.Duration(max(ns, 0)) }

// inputHeader is an input blob's header: which frames follow.
type inputHeader struct {
	V       int    `json:"v"`
	Job     string `json:"job"`
	HasInit bool   `json:"has_init,omitempty"`
	HasMask bool   `json:"has_mask,omitempty"`
}

func encodeInput(job string, req spec.Request) ([]byte, error) {
	h := inputHeader{V: wireVersion, Job: job, HasInit: req.InitImage != nil, HasMask: req.Mask != nil}
	var frames [][]byte
	for _, img := range []image.Image{req.InitImage, maskImage(req.Mask)} {
		if img == nil {
			continue
		}
		f, err := encodeFrame(img)
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode input header: %w", err)
	}
	return encodeBlob(hdr, frames), nil
}

// maskImage keeps a nil *image.Gray a nil interface.
func maskImage(m *image.Gray) image.Image {
	if m == nil {
		return nil
	}
	return m
}

// decodeInput sets req's init image and mask from an input blob of job.
func decodeInput(job string, data []byte, req *spec.Request) error {
	hdr, frames, err := decodeBlob(data)
	if err != nil {
		return err
	}
	var h inputHeader
	if err := decodeJSON(hdr, maxBlobHeader, &h); err != nil {
		return err
	}
	want := 0
	if h.HasInit {
		want++
	}
	if h.HasMask {
		want++
	}
	if h.V != wireVersion || h.Job != job || len(frames) != want {
		return fmt.Errorf("%w: input blob for %q with %d frames", ErrBadMessage, h.Job, len(frames))
	}
	imgs := make([]image.Image, len(frames))
	for i, f := range frames {
		if imgs[i], err = decodeFrame(f); err != nil {
			return err
		}
	}
	if h.HasInit {
		req.InitImage, imgs = imgs[0], imgs[1:]
	}
	if h.HasMask {
		mask, ok := imgs[0].(*image.Gray)
		if !ok {
			return fmt.Errorf("%w: mask frame is not gray", ErrBadMessage)
		}
		req.Mask = mask
	}
	if req.InitImage != nil {
		if _, ok := req.InitImage.(*image.RGBA); !ok {
			return fmt.Errorf("%w: init image frame is not RGBA", ErrBadMessage)
		}
	}
	return nil
}
