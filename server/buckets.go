package server

import (
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// targetSize is where an alias generates a w x h request: the model's
// native bucket nearest in aspect (SDXL's 1344x768 for 1792x1024), resized
// to w x h only as the last step. A model that reports no buckets keeps
// its native pixel count in the asked aspect.
func targetSize(w, h int, info models.Info) (int, int) {
	if b, ok := spec.NearestBucket(info.Buckets, w, h); ok {
		return b.Width, b.Height
	}
	nativeW, nativeH := nativeSize(info)
	return generationSize(w, h, nativeW, nativeH)
}
