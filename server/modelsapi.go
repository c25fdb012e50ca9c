package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
)

// ownedBy is the owned_by of every model this server lists.
const ownedBy = "sdgate"

// listModels is GET /v1/models: local models by id, then the OpenAI names
// and the configured aliases, each with the model it resolves to now.
func (s *Server) listModels(c *gin.Context) error {
	c.JSON(http.StatusOK, compat.ModelList{Object: compat.ObjectList, Data: s.modelEntries(c)})
	return nil
}

// getModel is GET /v1/models/:model.
func (s *Server) getModel(c *gin.Context) error {
	name := c.Param("model")
	for _, m := range s.modelEntries(c) {
		if m.ID == name {
			c.JSON(http.StatusOK, m)
			return nil
		}
	}
	return &modelNotFoundError{name: name}
}

// modelEntries are the models the caller's key may use, by local id and
// by every name that resolves to one of them.
func (s *Server) modelEntries(c *gin.Context) []compat.Model {
	infos := slices.Clone(s.gen.Models())
	slices.SortFunc(infos, func(a, b models.Info) int { return strings.Compare(a.ID, b.ID) })
	entries := make([]compat.Model, 0, len(infos)+len(aliasFamilies))
	for _, m := range infos {
		if visible(c, m.ID) {
			entries = append(entries, toModel(m.ID, m))
		}
	}
	names := AliasNames()
	for _, alias := range slices.Sorted(maps.Keys(s.gen.Aliases())) {
		if _, isOpenAI := aliasFamilies[alias]; !isOpenAI && !slices.Contains(infoIDs(infos), alias) {
			names = append(names, alias)
		}
	}
	for _, alias := range names {
		if t, err := s.resolveModel(alias); err == nil && visible(c, t.ModelID) {
			entries = append(entries, toModel(alias, t.Info))
		}
	}
	return entries
}

func infoIDs(infos []models.Info) []string {
	ids := make([]string, len(infos))
	for i, m := range infos {
		ids[i] = m.ID
	}
	return ids
}

func toModel(id string, info models.Info) compat.Model {
	var created int64
	if !info.Created.IsZero() {
		created = info.Created.Unix()
	}
	m := compat.Model{ID: id, Object: compat.ObjectModel, Created: created, OwnedBy: ownedBy, Family: info.Family}
	if info.NativeWidth > 0 && info.NativeHeight > 0 {
		m.NativeSize = fmt.Sprintf("%dx%d", info.NativeWidth, info.NativeHeight)
	}
	return m
}
