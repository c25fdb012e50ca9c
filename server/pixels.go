// Pixel bounds: what an upload may decode to, what a request may ask for,
// and how many bytes of decoded pixels the process holds at once. All of
// it is checked from the files' headers before a pixel is decoded.

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// Pixel defaults (Options documents each).
const (
	DefaultMaxInputPixels   = compat.MaxSide * compat.MaxSide // 4096x4096
	DefaultMaxImagePixels   = 3840 * 2160                     // the largest upstream size
	DefaultMaxRequestPixels = 10 * 1536 * 1024                // gpt-image's n=10 at its largest fixed size
	DefaultDecodeBudget     = 512 << 20
	DefaultDecodeWait       = 2 * time.Second
)

// PixelLimits bound what one request delivers; 0 means unbounded.
type PixelLimits struct {
	Image   int64 // one delivered image, W x H
	Request int64 // n x W x H
	// MaxSide is the model's largest side for sizes generated exactly
	// (local models); 0: none.
	MaxSide int
}

// pixelLimits are the bounds for model info under the server's options.
func (s *Server) pixelLimits(info models.Info) PixelLimits {
	l := PixelLimits{Image: s.opts.MaxImagePixels, Request: s.opts.MaxRequestPixels}
	if info.NativeWidth > 0 && info.NativeHeight > 0 {
		_, l.MaxSide = spec.Model{NativeWidth: info.NativeWidth, NativeHeight: info.NativeHeight}.SideLimits()
	}
	return l
}

// check refuses a delivered size w x h for n images above the limits.
func (l PixelLimits) check(w, h, n int, exact bool) error {
	px := int64(w) * int64(h)
	if exact && l.MaxSide > 0 && (w > l.MaxSide || h > l.MaxSide) {
		return &compat.Error{Param: "size", Code: compat.CodeInvalidValue, Message: fmt.Sprintf(
			"Invalid 'size': %dx%d is larger than this model's limit of %d pixels per side.", w, h, l.MaxSide)}
	}
	if l.Image > 0 && px > l.Image {
		return &compat.Error{Param: "size", Code: compat.CodeInvalidValue, Message: fmt.Sprintf(
			"Invalid 'size': %dx%d is %d pixels, above this server's limit of %d per image.", w, h, px, l.Image)}
	}
	if l.Request > 0 && int64(n)*px > l.Request {
		return &compat.Error{Param: "n", Code: compat.CodeInvalidValue, Message: fmt.Sprintf(
			"Invalid 'n': %d images of %dx%d are %d pixels, above this server's limit of %d per request. Ask for fewer images or a smaller size.",
			n, w, h, int64(n)*px, l.Request)}
	}
	return nil
}

// fit shrinks w x h (aspect kept) until one image and n of them fit; "auto"
// sizes are the input's, which the client did not choose.
func (l PixelLimits) fit(w, h, n int) (int, int) {
	most := int64(math.MaxInt64)
	if l.Image > 0 {
		most = l.Image
	}
	if l.Request > 0 {
		most = min(most, l.Request/int64(max(n, 1)))
	}
	px := int64(w) * int64(h)
	if px <= most {
		return w, h
	}
	scale := math.Sqrt(float64(most) / float64(px))
	fw := max(1, int(math.Floor(float64(w)*scale)))
	fh := max(1, int(math.Floor(float64(h)*scale)))
	return fw, fh
}

// probeUpload reads an upload's header only: its codec and declared size.
func probeUpload(u compat.Upload) (imageCodec, image.Config, error) {
	param := uploadParam(u)
	for _, codec := range uploadCodecs {
		if !codec.magic(u.Data) {
			continue
		}
		cfg, err := codec.config(u.Data)
		if err != nil {
			return codec, cfg, undecodable(param, codec.name, err)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > compat.MaxSide || cfg.Height > compat.MaxSide {
			return codec, cfg, &compat.Error{Param: param, Code: compat.CodeImageTooLarge, Message: fmt.Sprintf(
				"Invalid '%s': %dx%d is outside 1x1 to %dx%d.", param, cfg.Width, cfg.Height, compat.MaxSide, compat.MaxSide)}
		}
		return codec, cfg, nil
	}
	return imageCodec{}, image.Config{}, &compat.Error{Param: param, Code: compat.CodeInvalidImageFormat, Message: fmt.Sprintf(
		"Invalid '%s': unsupported file format (declared as %q). Supported formats are PNG, JPEG and WebP.", param, u.ContentType)}
}

// probeMask reads a mask's PNG header (DecodeMask checks the rest).
func probeMask(m *compat.Upload) (image.Config, error) {
	if m == nil {
		return image.Config{}, nil
	}
	if !bytes.HasPrefix(m.Data, []byte("\x89PNG\r\n\x1a\n")) {
		return image.Config{}, &compat.Error{Param: "mask", Code: compat.CodeInvalidImageFormat,
			Message: "Invalid 'mask': the mask must be a PNG file with an alpha channel."}
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(m.Data))
	if err != nil {
		return cfg, &compat.Error{Param: "mask", Code: compat.CodeInvalidImage, Message: fmt.Sprintf("Invalid 'mask': not a valid PNG file (%v).", err)}
	}
	return cfg, nil
}

// bytesPerPixel is what the standard decoders allocate per pixel for a
// colour model.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// decodeCost estimates the bytes a decode holds: the decoded image, its
// opaque RGBA copy and a one-byte mask, plus the mask's own decode.
func decodeCost(img, mask image.Config) int64 {
	px := int64(img.Width) * int64(img.Height)
	cost := px * (bytesPerPixel(img.ColorModel) + 4 + 1)
	mpx := int64(mask.Width) * int64(mask.Height)
	return cost + mpx*(bytesPerPixel(mask.ColorModel)+1)
}

// checkInput refuses an input image above the decoded-pixel bound.
func (s *Server) checkInput(cfg image.Config) error {
	if px := int64(cfg.Width) * int64(cfg.Height); px > s.opts.MaxInputPixels {
		return &compat.Error{Param: "image", Code: compat.CodeImageTooLarge, Message: fmt.Sprintf(
			"Invalid 'image': %dx%d is %d pixels, above this server's limit of %d.", cfg.Width, cfg.Height, px, s.opts.MaxInputPixels)}
	}
	return nil
}

// decodeGate bounds the bytes of decoded pixels held by requests at once.
type decodeGate struct {
	sem     *semaphore.Weighted
	budget  int64
	wait    time.Duration
	started atomic.Int64 // decodes let through, for tests and probes
}

func newDecodeGate(budget int64, wait time.Duration) *decodeGate {
	return &decodeGate{sem: semaphore.NewWeighted(budget), budget: budget, wait: wait}
}

// errDecodeBusy: the decode budget stayed spent for the whole wait.
var errDecodeBusy = errors.New("decode budget busy")

// acquire takes cost bytes of the budget, waiting at most g.wait; release
// gives them back. A cost above the whole budget can never fit: 413.
func (g *decodeGate) acquire(ctx context.Context, cost int64) (release func(), err error) {
	if cost > g.budget {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, typ: compat.TypeInvalidRequest, param: "image",
			code: compat.CodeImageTooLarge, message: fmt.Sprintf(
				"The image needs about %d MB to decode, above this server's decode budget of %d MB.", cost>>20, g.budget>>20)}
	}
	wctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	if err := g.sem.Acquire(wctx, cost); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait to decode: %w", ctx.Err())
		}
		return nil, &httpError{status: http.StatusTooManyRequests, typ: compat.TypeRequests, code: "rate_limit_exceeded",
			retry: true, retryAfter: time.Second, message: "The server is busy decoding other uploads. Please retry after 1 second."}
	}
	g.started.Add(1)
	return func() { g.sem.Release(cost) }, nil
}

func (o *Options) fillPixels() {
	if o.MaxInputPixels <= 0 {
		o.MaxInputPixels = DefaultMaxInputPixels
	}
	if o.MaxImagePixels <= 0 {
		o.MaxImagePixels = DefaultMaxImagePixels
	}
	if o.MaxRequestPixels <= 0 {
		o.MaxRequestPixels = DefaultMaxRequestPixels
	}
	if o.DecodeBudget <= 0 {
		o.DecodeBudget = DefaultDecodeBudget
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.DecodeWait <= 0 {
		o.DecodeWait = DefaultDecodeWait
	}
}
