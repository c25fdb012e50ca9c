package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/server"
)

// admissionFlags are the upload and delivery bounds the server checks from
// headers before decoding a pixel (docs/reliability.md). Serve and the
// gateway both decode uploads, so both take them.
type admissionFlags struct {
	maxInput     pixelCount
	maxImage     pixelCount
	maxRequest   pixelCount
	decodeBudget int64
	decodeWait   time.Duration
}

func (f *admissionFlags) register(fs *flag.FlagSet) {
	f.maxInput = pixelCount{n: server.DefaultMaxInputPixels, text: "4096x4096"}
	f.maxImage = pixelCount{n: server.DefaultMaxImagePixels, text: "3840x2160"}
	f.maxRequest = pixelCount{n: server.DefaultMaxRequestPixels, text: "10x1536x1024"}
	fs.Var(&f.maxInput, "max-input-pixels", "largest uploaded image, W x H read from its header before decoding (400 above): pixels, WxH or NxWxH")
	fs.Var(&f.maxImage, "max-image-pixels", "largest delivered image (400 for an explicit size above; size=auto shrinks to fit)")
	fs.Var(&f.maxRequest, "max-request-pixels", "largest n x W x H one request delivers (400 above; size=auto shrinks to fit)")
	fs.Int64Var(&f.decodeBudget, "decode-budget", server.DefaultDecodeBudget, "bytes of decoded upload pixels held at once by all requests; one upload needing more is 413")
	fs.DurationVar(&f.decodeWait, "decode-wait", server.DefaultDecodeWait, "how long an upload waits for room in the decode budget before 429")
}

// validate refuses bounds that contradict each other or that the server
// would silently replace by its defaults (a count was already refused by
// Set); it runs before ONNX Runtime loads.
func (f *admissionFlags) validate() error {
	if most := int64(compat.MaxSide) * compat.MaxSide; f.maxInput.n > most {
		return fmt.Errorf("--max-input-pixels %s: above %dx%d, the largest side any upload may have", f.maxInput.text, compat.MaxSide, compat.MaxSide)
	}
	if f.maxImage.n > f.maxRequest.n {
		return fmt.Errorf("--max-image-pixels %s is above --max-request-pixels %s: one image could never be delivered at that size",
			f.maxImage.text, f.maxRequest.text)
	}
	if f.decodeBudget < 1<<20 {
		return fmt.Errorf("--decode-budget %d: want at least 1 MiB (1048576) of decoded pixels", f.decodeBudget)
	}
	if f.decodeWait <= 0 {
		return fmt.Errorf("--decode-wait %s: must be positive", f.decodeWait)
	}
	return nil
}

// apply copies the bounds into the server's options.
func (f *admissionFlags) apply(o *server.Options) {
	o.MaxInputPixels, o.MaxImagePixels, o.MaxRequestPixels = f.maxInput.n, f.maxImage.n, f.maxRequest.n
	o.DecodeBudget, o.DecodeWait = f.decodeBudget, f.decodeWait
}

// pixelCount is a flag of a pixel count, written as a number (8847360), a
// size (3840x2160) or a count of sizes (10x1536x1024).
type pixelCount struct {
	n    int64
	text string
}

func (p *pixelCount) String() string { return p.text }

func (p *pixelCount) Set(s string) error {
	n := int64(1)
	for _, part := range strings.Split(strings.ToLower(strings.TrimSpace(s)), "x") {
		v, err := strconv.ParseInt(part, 10, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("%q: want a positive pixel count, WxH or NxWxH", s)
		}
		if n > (1<<62)/v {
			return fmt.Errorf("%q: too large", s)
		}
		n *= v
	}
	p.n, p.text = n, s
	return nil
}
