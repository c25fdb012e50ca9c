package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/sd/spec"
)

// streamImages answers stream=true as server-sent events: one
// image_generation.completed event per image, each with that image's usage.
// The pipeline has no intermediate decodes, so no partial_image events are
// sent; upstream documents that fewer partial images than asked may arrive.
func (s *Server) streamImages(c *gin.Context, plan GenerationPlan, res spec.Result, payloads []imagePayload, textTokens int) error {
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	created := s.opts.Now().Unix()
	for i, p := range payloads {
		usage := ToUsage(plan, 1, textTokens)
		ev := compat.ImageStreamEvent{
			Type:         compat.EventImageGenerationCompleted,
			B64JSON:      p.B64,
			CreatedAt:    created,
			Size:         compat.FormatSize(plan.Width, plan.Height),
			Quality:      plan.Quality,
			Background:   plan.Background,
			OutputFormat: plan.OutputFormat,
			Seed:         res.Images[i].Seed,
			Usage:        &usage,
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode stream event: %w", err)
		}
		if _, err := fmt.Fprintf(c.Writer, "event: %s\ndata: %s\n\n", ev.Type, data); err != nil {
			c.Abort() // the client left mid-stream; nothing more to say
			return nil
		}
		c.Writer.Flush()
	}
	return nil
}
