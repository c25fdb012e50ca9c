package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// ownedBy is the owned_by of every model this server lists.
const ownedBy = "sdgate"

// listModels is GET /v1/models: local models by id, then the aliases whose
// target exists.
func (s *Server) listModels(c *gin.Context) error {
	c.JSON(http.StatusOK, compat.ModelList{Object: compat.ObjectList, Data: s.modelEntries()})
	return nil
}

// getModel is GET /v1/models/:model.
func (s *Server) getModel(c *gin.Context) error {
	name := c.Param("model")
	for _, m := range s.modelEntries() {
		if m.ID == name {
			c.JSON(http.StatusOK, m)
			return nil
		}
	}
	return &modelNotFoundError{name: name}
}

func (s *Server) modelEntries() []compat.Model {
	infos := slices.Clone(s.gen.Models())
	slices.SortFunc(infos, func(a, b models.Info) int { return strings.Compare(a.ID, b.ID) })
	entries := make([]compat.Model, 0, len(infos)+len(aliasFamilies))
	for _, m := range infos {
		entries = append(entries, toModel(m.ID, m))
	}
	aliases := make([]string, 0, len(aliasFamilies))
	for alias := range aliasFamilies {
		aliases = append(aliases, alias)
	}
	slices.Sort(aliases)
	for _, alias := range aliases {
		if t, err := s.resolveModel(alias); err == nil {
			entries = append(entries, toModel(alias, t.Info))
		}
	}
	return entries
}

func toModel(id string, info models.Info) compat.Model {
	var created int64
	if !info.Created.IsZero() {
		created = info.Created.Unix()
	}
	return compat.Model{ID: id, Object: compat.ObjectModel, Created: created, OwnedBy: ownedBy}
}
