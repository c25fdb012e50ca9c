package server

import (
	"context"
	"fmt"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
)

// UploadLimit caps the bodies of the multipart routes (edits, variations):
// the largest image upstream takes plus room for the other parts. It
// replaces Options.BodyLimit there when it is the larger of the two.
const UploadLimit = compat.MaxUploadBytes + 1<<20

// isUploadRoute names the routes whose bodies are multipart image uploads.
func isUploadRoute(path string) bool {
	return path == "/v1/images/edits" || path == "/v1/images/variations"
}

// VariationStrength is how far a variation re-imagines its image when the
// request names no strength: enough to vary the picture, little enough to
// keep its composition.
const VariationStrength = 0.7

// createImageEdit is POST /v1/images/edits.
func (s *Server) createImageEdit(c *gin.Context) error {
	boundary, err := multipartBoundary(c.Request)
	if err != nil {
		return err
	}
	req, err := compat.ReadImageEditRequest(c.Request.Body, boundary)
	if err != nil {
		return uploadErr(c, err)
	}
	name := req.Model
	if name == "" {
		name = compat.DefaultEditModel(req)
	}
	t, err := s.resolveModel(name)
	if err != nil {
		return err
	}
	if err := compat.ValidateEdit(req, t.Rules); err != nil {
		return err
	}
	if err := canStartFromImage(t); err != nil {
		return err
	}
	in, err := decodeEditInput(req, compat.EditRulesFor(t.Rules.Family))
	if err != nil {
		return err
	}
	plan, err := FromEditRequest(req, t, in, spec.RandomSeed())
	if err != nil {
		return err
	}
	key := cache.Params{ImageDigests: []string{cache.Digest(req.Images[0].Data)}}
	if req.Mask != nil {
		key.MaskDigest = cache.Digest(req.Mask.Data)
	}
	return s.respondImages(c, imageJob{Endpoint: "edits", Target: t, Plan: plan, Cache: key}, req.Generation())
}

// createImageVariation is POST /v1/images/variations: image-to-image of
// the upload at VariationStrength, with an empty prompt unless the prompt
// extension gives one.
func (s *Server) createImageVariation(c *gin.Context) error {
	boundary, err := multipartBoundary(c.Request)
	if err != nil {
		return err
	}
	req, err := compat.ReadImageVariationRequest(c.Request.Body, boundary)
	if err != nil {
		return uploadErr(c, err)
	}
	name := req.Model
	if name == "" {
		name = string(compat.FamilyDallE2) // the only upstream model with variations
	}
	t, err := s.resolveModel(name)
	if err != nil {
		return err
	}
	if err := compat.ValidateVariation(req, t.Rules); err != nil {
		return err
	}
	if err := canStartFromImage(t); err != nil {
		return err
	}
	img, err := decodeUpload(req.Images[0])
	if err != nil {
		return err
	}
	if err := checkSquare(img, compat.EditRulesFor(t.Rules.Family), "variations"); err != nil {
		return err
	}
	plan, err := FromVariationRequest(req, t, img, spec.RandomSeed())
	if err != nil {
		return err
	}
	key := cache.Params{ImageDigests: []string{cache.Digest(req.Images[0].Data)}}
	return s.respondImages(c, imageJob{Endpoint: "variations", Target: t, Plan: plan, Cache: key}, req.Generation())
}

// respondImages runs a job and answers with the images in the generations
// response shape.
func (s *Server) respondImages(c *gin.Context, job imageJob, req compat.ImageGenerationRequest) error {
	if job.Plan.Stream {
		return s.streamJob(c, job, req)
	}
	out, err := s.produce(c, job)
	if err != nil {
		return err
	}
	return s.respondJSON(c, job.Plan, out.result, out.images, out.b64, s.textTokens(req, out.result))
}

// multipartBoundary insists on multipart/form-data and returns its boundary
// ("" when missing: the reader reports it).
func multipartBoundary(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "multipart/form-data" {
		return "", badRequest(fmt.Sprintf("Invalid Content-Type header (%q): expected multipart/form-data.", ct))
	}
	return params["boundary"], nil
}

// uploadErr marks a body that stopped because the client left, so it is
// logged as 499 rather than as a server fault.
func uploadErr(c *gin.Context, err error) error {
	if ctxErr := c.Request.Context().Err(); ctxErr != nil {
		return fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}
