package server

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/web"
)

// routes is the whole HTTP surface of sdgate in one place.
//
//	POST /v1/images/generations     OpenAI: create images from a prompt
//	POST /v1/images/edits           OpenAI: repaint part of an image (multipart)
//	POST /v1/images/variations      OpenAI: variations of an image (multipart)
//	GET  /v1/models                 OpenAI: local models and aliases
//	GET  /v1/models/:model          OpenAI: one of them
//	GET  /v1/usage                  the caller's usage by day (admins: any key's); ?group_by=model
//	GET  /v1/usage/requests         the caller's newest requests: model, cache outcome, timing
//	GET  /v1/admin/keys             admin: list API keys (never their secrets)
//	POST /v1/admin/keys             admin: create a key (its secret is shown once)
//	DELETE /v1/admin/keys/:id       admin: revoke a key
//	GET  /v1/admin/models           admin: model folders, loaded or not, and broken ones with why
//	POST /v1/admin/models/rescan    admin: rescan the models directory (as SIGHUP does)
//	GET  /v1/files/images/:name     images of response_format=url (expiring)
//	GET  /healthz                   the process is alive
//	GET  /readyz                    the default model can run
//	GET  /metrics                   Prometheus text format (admin key when keys are on; or --metrics-addr)
//	GET  /openapi.json              OpenAPI 3 document of this list
//	GET  /docs                      that document as an offline HTML page
//	GET  /playground, /web/:file     browser playground (static; the key stays in the page)
//	GET  /dashboard                 browser usage dashboard over /v1/usage (static, like the playground)
//
// Anything else is a 404 in OpenAI's envelope.
func (s *Server) routes() (*gin.Engine, error) {
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	if err := r.SetTrustedProxies(s.opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("%w: trusted proxies: %w", ErrBadOptions, err)
	}

	r.Use(requestIDMiddleware, s.accessLog, s.recovery, s.refuseEncodedBodies, s.requestBody)

	// Operational endpoints stay outside the auth seam: probes and scrapers
	// carry no API key.
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.handle(s.readyz))
	s.metricsRoute(r)
	r.GET("/openapi.json", s.openAPIDocument)
	r.GET("/docs", s.handle(s.docsPage))
	// The browser pages are static; their data comes from /v1 with the pasted key.
	pages := http.StripPrefix("/web", web.Handler())
	r.GET("/web/:file", gin.WrapH(pages))
	r.GET("/playground", func(c *gin.Context) { c.Redirect(http.StatusFound, "/web/playground.html") })
	r.GET("/dashboard", func(c *gin.Context) { c.Redirect(http.StatusFound, "/web/dashboard.html") })
	// Image URLs are unguessable capabilities, fetched by browsers without keys.
	r.GET("/v1/files/images/:name", s.handle(s.getImageFile))

	var mw []gin.HandlerFunc
	if s.opts.Gate != nil && !s.opts.NoAuth {
		mw = append(mw, s.authenticate)
	}
	api := r.Group("/v1", mw...)
	api.POST("/images/generations", s.handle(s.createImage))
	api.POST("/images/edits", s.handle(s.createImageEdit))
	api.POST("/images/variations", s.handle(s.createImageVariation))
	api.GET("/models", s.handle(s.listModels))
	api.GET("/models/:model", s.handle(s.getModel))
	api.GET("/usage", s.handle(s.usage))
	api.GET("/usage/requests", s.handle(s.recentUsage))
	api.GET("/admin/keys", s.handle(s.listKeys))
	api.POST("/admin/keys", s.handle(s.createKey))
	api.DELETE("/admin/keys/:id", s.handle(s.revokeKey))
	api.GET("/admin/models", s.handle(s.adminModels))
	api.POST("/admin/models/rescan", s.handle(s.rescanModels))

	r.NoRoute(s.handle(func(c *gin.Context) error {
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest,
			message: fmt.Sprintf("Invalid URL (%s %s)", c.Request.Method, c.Request.URL.Path)}
	}))
	return r, nil
}
