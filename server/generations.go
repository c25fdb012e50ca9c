package server

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
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
	if err := checkAccess(c, t); err != nil { // before validation, whose errors name the model
		return err
	}
	if err := compat.ValidateGeneration(req, t.Rules); err != nil {
		return err
	}
	plan, err := FromGenerationRequest(req, t, spec.RandomSeed())
	if err != nil {
		return err
	}

	job := imageJob{Endpoint: "generations", Target: t, Plan: plan}
	if plan.Stream {
		return s.streamJob(c, job, req)
	}
	out, err := s.produce(c, job)
	if err != nil {
		return err
	}
	return s.respondJSON(c, plan, out, s.textTokens(req, out.result))
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
		if r.Context().Err() != nil { // the client left mid-body: not our fault
			return nil, fmt.Errorf("read body: %w: %w", context.Canceled, err)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// textTokens counts the CLIP tokens that conditioned the images: the
// prompt as the pipeline used it, plus the negative prompt.
func (s *Server) textTokens(req compat.ImageGenerationRequest, res spec.Result) int {
	prompt := res.Prompt
	if prompt == "" {
		prompt = req.Prompt
	}
	n := min(s.gen.CountTokens(prompt), maxPromptTokens)
	if req.NegativePrompt != "" {
		n += min(s.gen.CountTokens(req.NegativePrompt), maxPromptTokens)
	}
	return n
}
