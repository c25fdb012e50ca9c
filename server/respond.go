package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
)

// The hot path of a b64_json answer: rather than base64-encoding each image
// into a string and letting encoding/json scan that string byte by byte for
// characters to escape (base64 has none), the response is marshalled with a
// short placeholder per image and each image is base64-encoded straight into
// the one response buffer, which is recycled.

// b64Mark starts every placeholder: random per process, so no prompt or
// other field can contain it by accident.
var b64Mark = func() string {
	var b [8]byte
	rand.Read(b[:])
	return "sdgate-b64-" + hex.EncodeToString(b[:]) + "-"
}()

func b64Placeholder(i int) string { return fmt.Sprintf("%s%d.", b64Mark, i) }

// encodeBuffers recycle the base64 of images the cache holds no base64 for.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// respondJSON answers out's images, made for req, in the generations
// response shape; out.b64, when not nil, holds the images' base64 already
// (a cache hit).
func (s *Server) respondJSON(c *gin.Context, plan GenerationPlan, out produced, req compat.ImageGenerationRequest) error {
	res, images, b64 := out.result, out.images, out.b64
	textTokens := 0
	if plan.Usage { // only GPT-like families answer usage: spare the others the tokenizer
		textTokens = s.textTokens(req, res)
	}
	if plan.ResponseFormat == compat.ResponseFormatURL {
		buf := encodeBuffers.Get().(*[]byte)
		defer encodeBuffers.Put(buf)
		*buf = ToImagesResponse(plan, res, s.payloadsOf(out), s.opts.Now(), textTokens).AppendJSON((*buf)[:0])
		writeJSON(c, *buf)
		return nil
	}
	payloads := make([]imagePayload, len(images))
	for i := range payloads {
		payloads[i].B64 = b64Placeholder(i)
	}
	s.metrics.images.Add(float64(len(payloads)))
	head := ToImagesResponse(plan, res, payloads, s.opts.Now(), textTokens).AppendJSON(nil)
	// Cut the marshalled answer at the placeholders: len(images)+1 pieces.
	pieces := make([][]byte, 0, len(images)+1)
	size := 0
	rest := head
	for i, img := range images {
		mark := b64Placeholder(i)
		at := bytes.Index(rest, []byte(mark))
		if at < 0 {
			return fmt.Errorf("encode response: placeholder %d missing", i)
		}
		pieces = append(pieces, rest[:at])
		size += at + base64.StdEncoding.EncodedLen(len(img))
		rest = rest[at+len(mark):]
	}
	pieces = append(pieces, rest)
	size += len(rest)

	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(size))
	c.Status(http.StatusOK)
	w := c.Writer
	for i, img := range images {
		if _, err := w.Write(pieces[i]); err != nil {
			return nil // the client left; nothing more to say
		}
		data := []byte(nil)
		if b64 != nil {
			data = b64[i]
		} else {
			buf := encodeBuffers.Get().(*[]byte)
			defer encodeBuffers.Put(buf)
			*buf = slices.Grow((*buf)[:0], base64.StdEncoding.EncodedLen(len(img)))[:base64.StdEncoding.EncodedLen(len(img))]
			base64.StdEncoding.Encode(*buf, img)
			data = *buf
		}
		if _, err := w.Write(data); err != nil {
			return nil
		}
	}
	w.Write(pieces[len(images)])
	return nil
}

// smallResponse is net/http's buffer before chunking: a handler that
// returns having written less gets its Content-Length from net/http.
const smallResponse = 2048

// jsonContentType is shared by every JSON answer's header (net/http only
// reads it), sparing each one a slice.
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeJSON answers 200 with body, a marshalled JSON document, as gin's
// c.JSON would but without its reflection.
func writeJSON(c *gin.Context, body []byte) {
	h := c.Writer.Header()
	h["Content-Type"] = jsonContentType
	if len(body) >= smallResponse { // net/http sizes smaller answers itself
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	c.Status(http.StatusOK)
	c.Writer.Write(body) // a client that left gets nothing more
}
