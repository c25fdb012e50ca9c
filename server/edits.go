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

// UploadLimit caps the bodies of the upload routes (edits, variations):
// the largest image upstream takes and a mask, base64-encoded as a JSON
// edit carries them (4/3 of their size), plus room for the other fields.
// It replaces Options.BodyLimit there when it is the larger of the two.
const UploadLimit = (compat.MaxUploadBytes+compat.MaxMaskBytes)/3*4 + 1<<20

// isUploadRoute names the routes whose bodies are multipart image uploads.
func isUploadRoute(path string) bool {
	return path == "/v1/images/edits" || path == "/v1/images/variations"
}

// VariationStrength is how far a variation re-imagines its image when the
// request names no strength: enough to vary the picture, little enough to
// keep its composition.
const VariationStrength = 0.7

// createImageEdit is POST /v1/images/edits. The body is read whole first
// (bounded by UploadLimit and per part, never decoded), so an image part
// sent before the model field is only held as bytes. Then, in order: the
// model and the text fields, the key's model access, the image headers
// against the pixel bounds, the queue and the key's limits; only an
// admitted request decodes, inside the process's decode budget.
func (s *Server) createImageEdit(c *gin.Context) (err error) {
	req, err := readEditRequest(c)
	if err != nil {
		return err
	}
	name := req.Model
	if name == "" {
		name = compat.DefaultEditModel
	}
	t, err := s.resolveModel(name)
	if err != nil {
		return err
	}
	if err := checkAccess(c, t); err != nil {
		return err
	}
	if err := compat.ValidateEdit(req, t.Rules); err != nil {
		return err
	}
	if err := canStartFromImage(t); err != nil {
		return err
	}
	n := countOf(req.N)
	cost, err := s.preflight(c, t, req.Images[0], req.Mask, req.Size, n)
	if err != nil {
		return err
	}
	defer func() { s.settleEarly(c, "edits", err) }()
	release, err := s.decodes.acquire(c.Request.Context(), cost)
	if err != nil {
		return err
	}
	in, err := decodeEditInput(req, compat.EditRulesFor(t.Rules.Family))
	if err != nil {
		release()
		return err
	}
	plan, err := FromEditRequest(req, t, in, spec.RandomSeed())
	release()
	if err != nil {
		return err
	}
	key := cache.Params{ImageDigests: []string{cache.Digest(req.Images[0].Data)}}
	if req.Mask != nil {
		key.MaskDigest = cache.Digest(req.Mask.Data)
	}
	return s.respondImages(c, &imageJob{Endpoint: "edits", Target: t, Plan: plan, Cache: key}, req.Generation())
}

// createImageVariation is POST /v1/images/variations: image-to-image of
// the upload at VariationStrength, with an empty prompt unless the prompt
// extension gives one. Admission comes before the decode, as for edits.
func (s *Server) createImageVariation(c *gin.Context) (err error) {
	boundary, err := multipartBoundary(c.Request, "multipart/form-data")
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
	if err := checkAccess(c, t); err != nil {
		return err
	}
	if err := compat.ValidateVariation(req, t.Rules); err != nil {
		return err
	}
	if err := canStartFromImage(t); err != nil {
		return err
	}
	cost, err := s.preflight(c, t, req.Images[0], nil, req.Size, countOf(req.N))
	if err != nil {
		return err
	}
	defer func() { s.settleEarly(c, "variations", err) }()
	release, err := s.decodes.acquire(c.Request.Context(), cost)
	if err != nil {
		return err
	}
	img, err := decodeUpload(req.Images[0])
	if err == nil {
		err = checkSquare(img, compat.EditRulesFor(t.Rules.Family), "variations")
	}
	var plan GenerationPlan
	if err == nil {
		plan, err = FromVariationRequest(req, t, img, spec.RandomSeed())
	}
	release()
	if err != nil {
		return err
	}
	key := cache.Params{ImageDigests: []string{cache.Digest(req.Images[0].Data)}}
	return s.respondImages(c, &imageJob{Endpoint: "variations", Target: t, Plan: plan, Cache: key}, req.Generation())
}

// preflight is everything an upload request is refused for before its
// pixels are decoded, once the key's model access is checked: the image (and mask)
// headers against the pixel bounds, then admission (queue room, the key's
// quota and rate). It answers the decode's cost in bytes. Once it returns
// nil the request holds an admission: settleEarly must follow.
func (s *Server) preflight(c *gin.Context, t Target, img compat.Upload, mask *compat.Upload, size string, n int) (int64, error) {
	_, cfg, err := probeUpload(img)
	if err != nil {
		return 0, err
	}
	if err := s.checkInput(cfg); err != nil {
		return 0, err
	}
	mcfg, err := probeMask(mask)
	if err != nil {
		return 0, err
	}
	if _, _, _, err := deliveredSize(size, t, cfg.Width, cfg.Height, n); err != nil {
		return 0, err
	}
	if err := s.admitEarly(c, t, n); err != nil {
		return 0, err
	}
	return decodeCost(cfg, mcfg), nil
}

// countOf is a request's n (1 when omitted).
func countOf(n *int) int {
	if n == nil {
		return 1
	}
	return *n
}

// respondImages runs a job and answers with the images in the generations
// response shape.
func (s *Server) respondImages(c *gin.Context, job *imageJob, req compat.ImageGenerationRequest) error {
	if job.Plan.Stream {
		return s.streamJob(c, job, req)
	}
	out, err := s.produce(c, job)
	if err != nil {
		return err
	}
	return s.respondJSON(c, job.Plan, out, req)
}

// readEditRequest reads either body form of an edit: multipart/form-data
// or upstream's application/json with data URLs.
func readEditRequest(c *gin.Context) (compat.ImageEditRequest, error) {
	mediaType, _, _ := mime.ParseMediaType(c.Request.Header.Get("Content-Type"))
	if mediaType == "application/json" {
		body, err := readJSONBody(c.Request)
		if err != nil {
			return compat.ImageEditRequest{}, err
		}
		return compat.DecodeImageEditJSON(body)
	}
	boundary, err := multipartBoundary(c.Request, "multipart/form-data or application/json")
	if err != nil {
		return compat.ImageEditRequest{}, err
	}
	req, err := compat.ReadImageEditRequest(c.Request.Body, boundary)
	if err != nil {
		return req, uploadErr(c, err)
	}
	return req, nil
}

// multipartBoundary insists on multipart/form-data and returns its boundary
// ("" when missing: the reader reports it).
func multipartBoundary(r *http.Request, expected string) (string, error) {
	ct := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "multipart/form-data" {
		return "", badRequest(fmt.Sprintf("Invalid Content-Type header (%q): expected %s.", ct, expected))
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
