package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
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

// responseBuffers recycles the buffers of b64_json answers.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// respondJSON answers the images in the generations response shape.
func (s *Server) respondJSON(c *gin.Context, plan GenerationPlan, res spec.Result, images [][]byte, textTokens int) error {
	if plan.ResponseFormat == compat.ResponseFormatURL {
		payloads := s.deliver(c.Request, plan, images)
		c.JSON(http.StatusOK, ToImagesResponse(plan, res, payloads, s.opts.Now(), textTokens))
		return nil
	}
	payloads := make([]imagePayload, len(images))
	for i := range payloads {
		payloads[i].B64 = b64Placeholder(i)
	}
	s.metrics.images.Add(float64(len(payloads)))
	head, err := json.Marshal(ToImagesResponse(plan, res, payloads, s.opts.Now(), textTokens))
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	buf := responseBuffers.Get().(*bytes.Buffer)
	defer responseBuffers.Put(buf)
	buf.Reset()
	size := len(head) + 1
	for _, img := range images {
		size += base64.StdEncoding.EncodedLen(len(img))
	}
	buf.Grow(size)
	rest := head
	for i, img := range images {
		mark := []byte(b64Placeholder(i))
		at := bytes.Index(rest, mark)
		if at < 0 {
			return fmt.Errorf("encode response: placeholder %d missing", i)
		}
		buf.Write(rest[:at])
		out := buf.AvailableBuffer()[:base64.StdEncoding.EncodedLen(len(img))]
		base64.StdEncoding.Encode(out, img)
		buf.Write(out) // appends in place: out is the buffer's own free space
		rest = rest[at+len(mark):]
	}
	buf.Write(rest)
	c.Data(http.StatusOK, "application/json; charset=utf-8", buf.Bytes())
	return nil
}
