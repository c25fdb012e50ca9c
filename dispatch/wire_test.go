package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

const testJob = "0123456789abcdef0123456789abcdef"

func validJob(t testing.TB) []byte {
	t.Helper()
	data, err := json.Marshal(newJobMsg(testJob, "tiny", spec.Request{Prompt: "p", Seed: 3, HasSeed: true, N: 2}, time.UnixMilli(5000)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTokenEscapesUnambiguously(t *testing.T) {
	for in, want := range map[string]string{"sd15": "sd15", "sd-xl": "sd-xl", "sd_15": "sd_5F15", "a.b c": "a_2Eb_20c", "*>": "_2A_3E"} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
	if Token("a_2E") == Token("a.") {
		t.Error("escape is ambiguous")
	}
}

func TestJobRoundTripsAndRejectsOutOfBounds(t *testing.T) {
	j, err := decodeJob(validJob(t))
	if err != nil {
		t.Fatal(err)
	}
	req := j.request()
	if req.Prompt != "p" || req.Seed != 3 || !req.HasSeed || req.N != 2 || !j.deadline().Equal(time.UnixMilli(5000)) {
		t.Errorf("decoded %+v", j)
	}
	for name, edit := range map[string]func(*jobMsg){
		"version":   func(j *jobMsg) { j.V = 2 },
		"id":        func(j *jobMsg) { j.ID = "../x" },
		"model":     func(j *jobMsg) { j.Model = "" },
		"size":      func(j *jobMsg) { j.Width = 1 << 20 },
		"n":         func(j *jobMsg) { j.N = 1000 },
		"steps":     func(j *jobMsg) { j.Steps = -1 },
		"seed":      func(j *jobMsg) { j.Seed = 1 << 60 },
		"prompt":    func(j *jobMsg) { j.Prompt = strings.Repeat("x", maxTextBytes+1) },
		"input":     func(j *jobMsg) { j.HasInit = true },
		"other job": func(j *jobMsg) { j.HasInit, j.Input = true, "in-other" },
	} {
		bad := j
		edit(&bad)
		data, _ := json.Marshal(bad)
		if _, err := decodeJob(data); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: err = %v, want ErrBadMessage", name, err)
		}
	}
	if _, err := decodeJob(append(validJob(t), []byte(" {}")...)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("trailing data: err = %v", err)
	}
}

func TestResultRoundTripKeepsPixelsAndErrors(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 16, 8))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	res := spec.Result{Images: []spec.Image{{Image: img, Seed: 11}}, Prompt: "p", Width: 16, Height: 8, Steps: 4, StepsRun: 4,
		Total: time.Second, Scheduler: "ddim"}
	blob, err := encodeResult(testJob, "w", res, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, worker, err := decodeResult(testJob, blob)
	if err != nil || worker != "w" {
		t.Fatal(err, worker)
	}
	if !bytes.Equal(got.Images[0].Image.Pix, img.Pix) || got.Images[0].Seed != 11 || got.Total != time.Second {
		t.Errorf("round trip changed the result: %+v", got)
	}
	if _, _, err := decodeResult("ffffffffffffffffffffffffffffffff", blob); !errors.Is(err, ErrBadMessage) {
		t.Errorf("another job's result: err = %v", err)
	}

	for _, in := range []error{
		&spec.ParamError{Param: "size", Message: "bad"},
		models.ErrModelNotFound, spec.ErrOutOfMemory, spec.ErrInvalidRequest,
		context.DeadlineExceeded, context.Canceled, errors.New("boom"),
	} {
		blob, err := encodeResult(testJob, "w", spec.Result{}, in)
		if err != nil {
			t.Fatal(err)
		}
		_, _, got := decodeResult(testJob, blob)
		var pe *spec.ParamError
		switch {
		case errors.As(in, &pe):
			var gp *spec.ParamError
			if !errors.As(got, &gp) || gp.Param != "size" {
				t.Errorf("%v came back as %v", in, got)
			}
		case in.Error() == "boom":
			if !errors.Is(got, ErrWorker) || !strings.Contains(got.Error(), "boom") {
				t.Errorf("%v came back as %v", in, got)
			}
		case !errors.Is(got, in):
			t.Errorf("%v came back as %v", in, got)
		}
	}
}

func TestInputRoundTripIsExactForTranslucentPixels(t *testing.T) {
	init := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range init.Pix {
		init.Pix[i] = byte(i * 13)
	}
	mask := image.NewGray(image.Rect(0, 0, 5, 3))
	mask.Pix[4] = 200
	blob, err := encodeInput(testJob, spec.Request{InitImage: init, Mask: mask})
	if err != nil {
		t.Fatal(err)
	}
	var req spec.Request
	if err := decodeInput(testJob, blob, &req); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(init.Pix, req.InitImage.(*image.RGBA).Pix); diff != "" {
		t.Errorf("init image changed: %s", diff)
	}
	if diff := cmp.Diff(mask.Pix, req.Mask.Pix); diff != "" {
		t.Errorf("mask changed: %s", diff)
	}
}

func TestAdvertBounds(t *testing.T) {
	good, _ := json.Marshal(advert{V: 1, Worker: "w", TTLms: 1000, Models: []models.Info{{ID: "m"}}})
	if _, err := decodeAdvert(good); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]advert{
		"no worker": {V: 1, TTLms: 1000},
		"no ttl":    {V: 1, Worker: "w"},
		"no id":     {V: 1, Worker: "w", TTLms: 1000, Models: []models.Info{{}}},
		"version":   {V: 9, Worker: "w", TTLms: 1000},
	} {
		data, _ := json.Marshal(a)
		if _, err := decodeAdvert(data); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// The fuzzers feed network bytes to every decoder: none may panic, and
// what decodes must respect the bounds.

func FuzzDecodeJob(f *testing.F) {
	f.Add(validJob(f))
	f.Add([]byte(`{"v":1,"id":"0123456789abcdef0123456789abcdef","model":"m","width":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := decodeJob(data)
		if err == nil && j.check() != nil {
			t.Fatalf("decoded a job that breaks its bounds: %+v", j)
		}
	})
}

func FuzzDecodeProgress(f *testing.F) {
	f.Add([]byte(`{"step":1,"total":4}`))
	f.Add([]byte(`{"step":9,"total":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := decodeProgress(data); err == nil && (p.Step > p.Total || p.Total > maxSteps) {
			t.Fatalf("bad progress accepted: %+v", p)
		}
	})
}

func FuzzDecodeAdvert(f *testing.F) {
	good, _ := json.Marshal(advert{V: 1, Worker: "w", TTLms: 1000, Models: []models.Info{{ID: "m", Aliases: []string{"a"}}}})
	f.Add(good)
	f.Add([]byte(`{"v":1,"worker":"w","ttl_ms":1,"models":[{"ID":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := decodeAdvert(data); err == nil && a.check() != nil {
			t.Fatalf("bad advert accepted: %+v", a)
		}
	})
}

func FuzzDecodeBlobs(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	res, _ := encodeResult(testJob, "w", spec.Result{Images: []spec.Image{{Image: img, Seed: 1}}, Width: 4, Height: 4}, nil)
	in, _ := encodeInput(testJob, spec.Request{InitImage: img, Mask: image.NewGray(image.Rect(0, 0, 4, 4))})
	f.Add(res)
	f.Add(in)
	f.Add(encodeBlob([]byte(`{}`), [][]byte{{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, _, err := decodeResult(testJob, data); err == nil {
			for _, im := range r.Images {
				if im.Image.Rect.Dx() != r.Width || im.Image.Rect.Dy() != r.Height {
					t.Fatalf("image %v in a %dx%d result", im.Image.Rect, r.Width, r.Height)
				}
			}
		}
		var req spec.Request
		if err := decodeInput(testJob, data, &req); err == nil && req.Mask != nil && len(req.Mask.Pix) != req.Mask.Rect.Dx()*req.Mask.Rect.Dy() {
			t.Fatal("mask pixels do not match its size")
		}
	})
}
