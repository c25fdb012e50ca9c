package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd"
)

// createImage is POST /v1/images/generations.
func (s *Server) createImage(c *gin.Context) error {
	body, err := readJSONBody(c.Request)
	if err != nil {
		return err
	}
	req, err := compat.DecodeImageGenerationRequest(body)
	if err != nil {
		return err
	}
	name := req.Model
	if name == "" {
		name = compat.DefaultModel(req)
	}
	t, err := s.resolveModel(name)
	if err != nil {
		return err
	}
	if err := compat.ValidateGeneration(req, t.Rules); err != nil {
		return err
	}
	plan, err := FromGenerationRequest(req, t, randomSeed())
	if err != nil {
		return err
	}

	res, err := s.gen.Generate(c.Request.Context(), t.ModelID, plan.SD)
	if err != nil {
		return err
	}
	if len(res.Images) != plan.SD.N {
		return fmt.Errorf("generator returned %d images for n=%d", len(res.Images), plan.SD.N)
	}
	s.metrics.observeGeneration(t.ModelID, res)

	payloads, err := s.deliver(c.Request, plan, res)
	if err != nil {
		return err
	}
	textTokens := s.textTokens(req, res)
	if plan.Stream {
		return s.streamImages(c, plan, res, payloads, textTokens)
	}
	c.JSON(http.StatusOK, ToImagesResponse(plan, res, payloads, s.opts.Now(), textTokens))
	return nil
}

// readJSONBody insists on a JSON content type and reads the (size-capped)
// body.
func readJSONBody(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "application/json" {
		return nil, badRequest(fmt.Sprintf("Invalid Content-Type header (%q): expected application/json.", ct))
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// deliver resizes each image to the asked size, encodes it, and either
// stores it behind a URL or base64-encodes it.
func (s *Server) deliver(r *http.Request, plan GenerationPlan, res sd.Result) ([]imagePayload, error) {
	enc := newImageEncoder()
	payloads := make([]imagePayload, len(res.Images))
	for i, img := range res.Images {
		if img.Image == nil {
			return nil, fmt.Errorf("generator returned no pixels for image %d", i)
		}
		data, err := enc.encode(resizeRGBA(img.Image, plan.Width, plan.Height), plan.OutputFormat, plan.Compression)
		if err != nil {
			return nil, err
		}
		if plan.ResponseFormat == compat.ResponseFormatURL {
			name, _ := s.store.put(data, contentTypes[plan.OutputFormat], plan.OutputFormat)
			payloads[i].URL = s.publicBaseURL(r) + imageFilesPath + name
		} else {
			payloads[i].B64 = base64.StdEncoding.EncodeToString(data)
		}
	}
	s.metrics.images.Add(float64(len(payloads)))
	return payloads, nil
}

// textTokens counts the CLIP tokens that conditioned the images: the
// prompt as the pipeline used it, plus the negative prompt.
func (s *Server) textTokens(req compat.ImageGenerationRequest, res sd.Result) int {
	prompt := res.Prompt
	if prompt == "" {
		prompt = req.Prompt
	}
	n := min(s.opts.CountTokens(prompt), clipContext)
	if req.NegativePrompt != "" {
		n += min(s.opts.CountTokens(req.NegativePrompt), clipContext)
	}
	return n
}

// randomSeed draws a seed that JSON clients can hold exactly, also for the
// seeds Seed+i of the other images.
func randomSeed() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return binary.LittleEndian.Uint64(b[:]) & (compat.MaxSeed >> 1)
}
