package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// ModelAdmin is what the admin model endpoints need beyond Backend; the
// models.Registry has it. Without one (Options.Admin nil) they answer 404.
type ModelAdmin interface {
	Rescan() error
	Broken() []models.Broken
	Loaded(id string) bool
}

var _ ModelAdmin = (*models.Registry)(nil)

type adminModel struct {
	ID           string   `json:"id"`
	DisplayName  string   `json:"display_name,omitempty"`
	Loaded       bool     `json:"loaded"`
	Family       string   `json:"family"`
	Buckets      []string `json:"buckets"`
	NativeWidth  int      `json:"native_width"`
	NativeHeight int      `json:"native_height"`
	DefaultSteps int      `json:"default_steps"`
	Scheduler    string   `json:"scheduler"`
	Inpainting   bool     `json:"inpainting"`
	CanEncode    bool     `json:"can_encode"`
	Aliases      []string `json:"aliases"`
}

type brokenModel struct {
	ID    string `json:"id"`
	Error string `json:"error"`
	// Stage is "validate" (not servable until a rescan) or "load" (listed
	// among the models, retried at RetryAt or when its files change).
	Stage   string `json:"stage"`
	RetryAt *int64 `json:"retry_at,omitempty"`
}

func (s *Server) modelAdmin(c *gin.Context) (ModelAdmin, error) {
	if err := s.requireAdmin(c); err != nil {
		return nil, err
	}
	a := s.opts.Admin
	if a == nil {
		return nil, &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, message: "This server cannot administer its models."}
	}
	return a, nil
}

// adminModels is GET /v1/admin/models: every model folder, loaded or not,
// and the broken ones with the reason.
func (s *Server) adminModels(c *gin.Context) error {
	a, err := s.modelAdmin(c)
	if err != nil {
		return err
	}
	s.writeModelListing(c, a)
	return nil
}

// rescanModels is POST /v1/admin/models/rescan (what SIGHUP does).
func (s *Server) rescanModels(c *gin.Context) error {
	a, err := s.modelAdmin(c)
	if err != nil {
		return err
	}
	if err := a.Rescan(); err != nil {
		return errors.Join(errors.New("rescan"), err)
	}
	s.writeModelListing(c, a)
	return nil
}

func (s *Server) writeModelListing(c *gin.Context, a ModelAdmin) {
	list := []adminModel{}
	for _, m := range s.gen.Models() {
		aliases := m.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		buckets := []string{}
		for _, b := range m.Buckets {
			buckets = append(buckets, fmt.Sprintf("%dx%d", b.Width, b.Height))
		}
		list = append(list, adminModel{ID: m.ID, DisplayName: m.DisplayName, Loaded: a.Loaded(m.ID), Family: m.Family, Buckets: buckets,
			NativeWidth: m.NativeWidth, NativeHeight: m.NativeHeight, DefaultSteps: m.DefaultSteps,
			Scheduler: m.Scheduler, Inpainting: m.Inpainting, CanEncode: m.CanEncode, Aliases: aliases})
	}
	broken := []brokenModel{}
	for _, b := range a.Broken() {
		bm := brokenModel{ID: b.ID, Error: b.Err.Error(), Stage: "validate"}
		if b.Load {
			bm.Stage, bm.RetryAt = "load", unixOrNil(b.RetryAt)
		}
		broken = append(broken, bm)
	}
	body := defaultModelFields(s.gen.Default())
	body["object"], body["data"], body["broken"] = "list", list, broken
	c.JSON(http.StatusOK, body)
}
