// The edit plan: how an edit or a variation becomes a GenerationPlan that
// starts from an image, and which pixels it must give back exactly.

package server

import (
	"fmt"
	"image"
	"image/draw"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
)

// canStartFromImage: edits and variations encode the image, which needs a
// VAE encoder.
func canStartFromImage(t Target) error {
	if t.Info.CanEncode {
		return nil
	}
	return &compat.Error{Param: "model", Code: compat.CodeInvalidValue, Message: fmt.Sprintf(
		"Invalid 'model': '%s' (local model %s) has no VAE encoder, so it cannot start from an image. Use a model whose folder has vae_encoder/.",
		t.Name, t.ModelID)}
}

// FromEditRequest maps a validated edit to a plan. The mask (or, without
// one, the image's own transparent pixels) is the region to repaint, at
// strength 1 unless the request says otherwise; with neither, the whole
// image is re-imagined at spec.DefaultStrength.
func FromEditRequest(req compat.ImageEditRequest, t Target, in EditInput, seed uint64) (GenerationPlan, error) {
	plan, err := basePlan(req.Generation(), t, seed)
	if err != nil {
		return GenerationPlan{}, err
	}
	if req.Background == compat.BackgroundTransparent {
		if err := transparentEdit(req); err != nil {
			return GenerationPlan{}, err
		}
		plan.Background, plan.Transparent = compat.BackgroundTransparent, true
	}
	strength := spec.DefaultStrength
	if in.Mask != nil {
		strength = 1
	}
	if req.Strength != nil {
		strength = *req.Strength
	}
	if err := plan.startFrom(in, req.Size, t, strength); err != nil {
		return GenerationPlan{}, err
	}
	return plan, nil
}

// FromVariationRequest maps a validated variation to a plan.
func FromVariationRequest(req compat.ImageVariationRequest, t Target, img image.Image, seed uint64) (GenerationPlan, error) {
	plan, err := basePlan(req.Generation(), t, seed)
	if err != nil {
		return GenerationPlan{}, err
	}
	strength := VariationStrength
	if req.Strength != nil {
		strength = *req.Strength
	}
	if err := plan.startFrom(EditInput{Image: img}, req.Size, t, strength); err != nil {
		return GenerationPlan{}, err
	}
	return plan, nil
}

// startFrom sizes the plan for an input image and puts the image (and
// mask) in the pipeline request at the generation size. "auto" delivers
// the image's own size; aliases generate at the native pixel count in the
// delivered aspect, local models exactly at an explicit size.
func (p *GenerationPlan) startFrom(in EditInput, size string, t Target, strength float64) error {
	b := in.Image.Bounds()
	w, h, auto, err := deliveredSize(size, t, b.Dx(), b.Dy(), p.SD.N)
	if err != nil {
		return err
	}
	genW, genH := w, h
	if auto || !t.Rules.AnySize {
		genW, genH = targetSize(w, h, t.Info)
	}
	p.setSize(w, h, genW, genH)

	img := opaqueRGBA(in.Image)
	p.SD.InitImage = resizeRGBA(img, genW, genH)
	p.SD.Strength, p.SD.HasStrength = strength, true
	if in.Mask != nil {
		p.SD.Mask = scaleMask(in.Mask, genW, genH)
		p.Keep = &keptPixels{Image: resizeRGBA(img, w, h), Mask: scaleMask(in.Mask, w, h)}
		if p.Transparent {
			p.Keep.Alpha = alphaAt(in.Image, w, h)
		}
	}
	p.ImageTokens = imageTokens(genW, genH, p.Quality)
	return nil
}

// deliveredSize is the size an edit or variation of an inW x inH image
// delivers, within t's pixel limits: "auto" is upstream's 1024-class answer
// for the GPT families (autoSize) and the input's size, shrunk to fit, for
// local models; an explicit size above the limits is refused. It needs
// only the image's header, so it runs before the decode too.
func deliveredSize(size string, t Target, inW, inH, n int) (w, h int, auto bool, err error) {
	w, h, auto, err = askedSize(size, t.Rules)
	if err != nil {
		return 0, 0, false, err
	}
	if auto {
		w, h, auto = autoSize(t.Rules.Family, inW, inH)
	}
	if auto {
		w, h = t.Limits.fit(inW, inH, n)
		return w, h, true, nil
	}
	if err := t.Limits.check(w, h, n, t.Rules.AnySize); err != nil {
		return 0, 0, false, err
	}
	return w, h, false, nil
}

// EditInput is an edit's decoded upload: the picture and the region to
// repaint (compat.MaskRepaint, the picture's size; nil: no region).
type EditInput struct {
	Image image.Image
	Mask  *image.Gray
}

// keptPixels is what an edit keeps, at the delivered size: the original
// image and the repaint mask. The pipeline already composites at the
// generation size; this restores the original exactly after resizing.
type keptPixels struct {
	Image *image.RGBA
	Mask  *image.Gray
	Alpha *image.Alpha // background "transparent": the input's alpha, given back to kept pixels
}

// finish resizes a generated image to the delivered size and, for an edit
// with a mask, puts every kept pixel of the original back.
func (p GenerationPlan) finish(img *image.RGBA) *image.RGBA {
	out := resizeRGBA(img, p.Width, p.Height)
	if p.Keep == nil {
		return out
	}
	if out == img { // resizeRGBA returned the generator's own image
		out = image.NewRGBA(img.Rect)
		draw.Draw(out, out.Rect, img, img.Rect.Min, draw.Src)
	}
	spec.Composite(out, p.Keep.Image, p.Keep.Mask)
	if p.Keep.Alpha != nil {
		restoreAlpha(out, p.Keep.Alpha, p.Keep.Mask)
	}
	return out
}
