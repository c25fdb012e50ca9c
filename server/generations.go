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
	prepared, err := s.prepared.decode(body)
	if err != nil {
		return err
	}
	req := prepared.req
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
	planned, err := s.planGeneration(prepared, t)
	if err != nil {
		return err
	}
	plan := planned.plan
	job := &imageJob{Endpoint: "generations", Target: t, Plan: plan, keyed: planned}
	if plan.Stream {
		return s.streamJob(c, job, req)
	}
	out, err := s.produce(c, job)
	if err != nil {
		return err
	}
	return s.respondJSON(c, plan, out, req)
}

// readJSONBody insists on a JSON content type and reads the (size-capped)
// body.
func readJSONBody(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if !isJSONMediaType(ct) {
		return nil, badRequest(fmt.Sprintf("Invalid Content-Type header (%q): expected application/json.", ct))
	}
	body, err := readBody(r)
	if err != nil {
		if r.Context().Err() != nil { // the client left mid-body: not our fault
			return nil, fmt.Errorf("read body: %w: %w", context.Canceled, err)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// isJSONMediaType: the content type is application/json, with or without
// parameters. The SDKs' own spellings are answered without parsing.
func isJSONMediaType(ct string) bool {
	switch ct {
	case "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8":
		return true
	}
	mediaType, _, err := mime.ParseMediaType(ct)
	return err == nil && mediaType == "application/json"
}

// readBody reads the whole body into one buffer of its declared length
// (io.ReadAll would grow it from 512 bytes); a body longer than declared is
// net/http's to refuse, one without a length is read as it comes.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > 1<<20 {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, n+1) // one spare byte, so the read sees the end
	got, err := io.ReadFull(r.Body, body)
	switch {
	case got == int(n) && err == io.ErrUnexpectedEOF: // exactly the declared length
		return body[:n], nil
	case err == nil: // a reader that gives more than declared: take it all
		rest, err := io.ReadAll(r.Body)
		return append(body, rest...), err
	}
	return nil, err // truncated or failed, as the body reported it
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
