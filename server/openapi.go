package server

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// openAPIJSON is the OpenAPI 3 document of routes.go, served as is.
//
//go:embed openapi.json
var openAPIJSON []byte

//go:embed docs.html.tmpl
var docsTemplate string

// apiDocs holds the document and its HTML rendering, both made once.
type apiDocs struct {
	json []byte
	html []byte
}

func loadAPIDocs() (*apiDocs, error) {
	var doc oaDocument
	if err := json.Unmarshal(openAPIJSON, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	page, err := renderDocs(doc)
	if err != nil {
		return nil, err
	}
	return &apiDocs{json: openAPIJSON, html: page}, nil
}

func (s *Server) openAPIDocument(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.docs.json)
}

func (s *Server) docsPage(c *gin.Context) error {
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	c.Data(http.StatusOK, "text/html; charset=utf-8", s.docs.html)
	return nil
}

// The slice of OpenAPI the docs page renders.
type (
	oaDocument struct {
		Info struct {
			Title       string `json:"title"`
			Version     string `json:"version"`
			Description string `json:"description"`
		} `json:"info"`
		Paths      map[string]map[string]oaOperation `json:"paths"`
		Components struct {
			Schemas   map[string]*oaSchema  `json:"schemas"`
			Responses map[string]oaResponse `json:"responses"`
		} `json:"components"`
	}
	oaOperation struct {
		Summary     string        `json:"summary"`
		Description string        `json:"description"`
		Parameters  []oaParameter `json:"parameters"`
		RequestBody *struct {
			Content map[string]struct {
				Schema *oaSchema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]oaResponse `json:"responses"`
	}
	oaParameter struct {
		Name        string    `json:"name"`
		In          string    `json:"in"`
		Required    bool      `json:"required"`
		Description string    `json:"description"`
		Schema      *oaSchema `json:"schema"`
	}
	oaResponse struct {
		Ref         string `json:"$ref"`
		Description string `json:"description"`
		Content     map[string]struct {
			Schema *oaSchema `json:"schema"`
		} `json:"content"`
	}
	oaSchema struct {
		Ref         string               `json:"$ref"`
		Type        string               `json:"type"`
		Format      string               `json:"format"`
		Description string               `json:"description"`
		Enum        []any                `json:"enum"`
		Minimum     *float64             `json:"minimum"`
		Maximum     *float64             `json:"maximum"`
		MaxLength   *int                 `json:"maxLength"`
		Pattern     string               `json:"pattern"`
		Required    []string             `json:"required"`
		Properties  map[string]*oaSchema `json:"properties"`
		Items       *oaSchema            `json:"items"`
	}
)

// Views for the template.
type (
	docsView struct {
		Title, Version, Description string
		Operations                  []operationView
		Schemas                     []schemaView
	}
	operationView struct {
		Method, Path, Summary, Description, Anchor string
		Parameters                                 []fieldView
		Body                                       string // schema name
		Responses                                  []responseView
	}
	responseView struct{ Status, Description, Types string }
	schemaView   struct {
		Name, Description string
		Fields            []fieldView
	}
	fieldView struct {
		Name, Type, Rules, Description string
		Required                       bool
	}
)

func renderDocs(doc oaDocument) ([]byte, error) {
	view := docsView{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	paths := sortedKeys(doc.Paths)
	for _, path := range paths {
		for _, method := range sortedKeys(doc.Paths[path]) {
			op := doc.Paths[path][method]
			ov := operationView{Method: strings.ToUpper(method), Path: path, Summary: op.Summary,
				Description: op.Description, Anchor: strings.ToLower(method) + strings.ReplaceAll(path, "/", "-")}
			for _, p := range op.Parameters {
				ov.Parameters = append(ov.Parameters, fieldView{Name: p.Name + " (" + p.In + ")",
					Type: typeName(p.Schema), Rules: rules(p.Schema), Description: p.Description, Required: p.Required})
			}
			if op.RequestBody != nil {
				for _, ct := range sortedKeys(op.RequestBody.Content) {
					ov.Body = typeName(op.RequestBody.Content[ct].Schema) + " (" + ct + ")"
				}
			}
			for _, status := range sortedKeys(op.Responses) {
				r := op.Responses[status]
				if r.Ref != "" {
					r = doc.Components.Responses[refName(r.Ref)]
				}
				var types []string
				for _, ct := range sortedKeys(r.Content) {
					types = append(types, ct+": "+typeName(r.Content[ct].Schema))
				}
				ov.Responses = append(ov.Responses, responseView{Status: status, Description: r.Description, Types: strings.Join(types, ", ")})
			}
			view.Operations = append(view.Operations, ov)
		}
	}
	for _, name := range sortedKeys(doc.Components.Schemas) {
		view.Schemas = append(view.Schemas, schemaViewOf(name, doc.Components.Schemas[name]))
	}
	tmpl, err := template.New("docs").Parse(docsTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse docs template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, view); err != nil {
		return nil, fmt.Errorf("render docs: %w", err)
	}
	return buf.Bytes(), nil
}

func schemaViewOf(name string, s *oaSchema) schemaView {
	v := schemaView{Name: name, Description: s.Description}
	for _, field := range sortedKeys(s.Properties) {
		p := s.Properties[field]
		v.Fields = append(v.Fields, fieldView{Name: field, Type: typeName(p), Rules: rules(p),
			Description: p.Description, Required: slices.Contains(s.Required, field)})
	}
	return v
}

func refName(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

func typeName(s *oaSchema) string {
	switch {
	case s == nil:
		return ""
	case s.Ref != "":
		return refName(s.Ref)
	case s.Type == "array" && s.Items != nil:
		return typeName(s.Items) + "[]"
	case s.Format != "":
		return s.Type + " (" + s.Format + ")"
	}
	return s.Type
}

// rules summarises a schema's constraints in one line.
func rules(s *oaSchema) string {
	if s == nil {
		return ""
	}
	var parts []string
	var enum []string
	for _, e := range s.Enum {
		if e != nil {
			enum = append(enum, fmt.Sprint(e))
		}
	}
	if len(enum) > 0 {
		parts = append(parts, "one of "+strings.Join(enum, ", "))
	}
	if s.Minimum != nil {
		parts = append(parts, fmt.Sprintf(">= %v", *s.Minimum))
	}
	if s.Maximum != nil {
		parts = append(parts, fmt.Sprintf("<= %v", *s.Maximum))
	}
	if s.MaxLength != nil {
		parts = append(parts, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	if s.Pattern != "" {
		parts = append(parts, "matches "+s.Pattern)
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
