package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIJSON)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	if err := loadOpenAPI(t).Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
}

// Every route gin serves is documented, and every documented operation is
// served: routes.go and openapi.json cannot drift apart.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s, err := New(newFakeGenerator(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	param := regexp.MustCompile(`:(\w+)`)
	served := map[string]bool{}
	for _, r := range s.engine.Routes() {
		path := param.ReplaceAllString(r.Path, "{$1}")
		served[r.Method+" "+path] = true
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is served but not documented", r.Method, path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("%s %s is documented but not served", method, path)
			}
		}
	}
}

// Real answers, successes and errors, validate against the document; the
// successful requests validate too.
func TestResponsesMatchOpenAPI(t *testing.T) {
	for _, ct := range []string{"image/png", "image/jpeg", "image/webp", "text/html", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	gen := newFakeGenerator()
	ts := startServer(t, gen, func(o *Options) { o.BodyLimit = 2048 })

	// The first URL answer is fetched below as a file.
	urlResp := postJSON(t, ts.Client(), ts.URL, `{"prompt":"x","model":"dall-e-2","size":"256x256"}`)
	imageURL := regexp.MustCompile(`/v1/files/images/[0-9a-f]{32}\.png`).FindString(string(urlResp.body))
	if imageURL == "" {
		t.Fatalf("no image URL in %s", urlResp.body)
	}

	tests := []struct {
		name, method, path, body string
		validRequest             bool
		wantStatus               int
	}{
		{"dall-e-2 url", "POST", "/v1/images/generations", `{"prompt":"x","size":"512x512","n":2}`, true, 200},
		{"dall-e-3 b64", "POST", "/v1/images/generations", `{"prompt":"x","model":"dall-e-3","response_format":"b64_json","style":"natural","quality":"hd"}`, true, 200},
		{"gpt-image-1 webp", "POST", "/v1/images/generations", `{"prompt":"x","model":"gpt-image-1","output_format":"webp","output_compression":50,"background":"opaque","moderation":"auto","user":"u"}`, true, 200},
		{"local with extensions", "POST", "/v1/images/generations", `{"prompt":"x","model":"sd-tiny","size":"64x64","seed":1,"steps":3,"guidance_scale":2,"scheduler":"ddim","negative_prompt":"y","response_format":"url"}`, true, 200},
		{"null fields", "POST", "/v1/images/generations", `{"prompt":"x","n":null,"size":null,"quality":null}`, true, 200},
		{"stream", "POST", "/v1/images/generations", `{"prompt":"x","model":"gpt-image-1","stream":true}`, true, 200},
		{"400", "POST", "/v1/images/generations", `{"prompt":"x","n":99}`, false, 400},
		{"400 bad json", "POST", "/v1/images/generations", `{`, false, 400},
		{"404 model", "POST", "/v1/images/generations", `{"prompt":"x","model":"nope"}`, true, 404},
		{"413", "POST", "/v1/images/generations", `{"prompt":"` + strings.Repeat("a", 3000) + `"}`, false, 413},
		{"models", "GET", "/v1/models", "", true, 200},
		{"model", "GET", "/v1/models/gpt-image-1", "", true, 200},
		{"model 404", "GET", "/v1/models/nope", "", true, 404},
		{"image file", "GET", imageURL, "", true, 200},
		{"image file 404", "GET", "/v1/files/images/0123456789abcdef0123456789abcdef.png", "", true, 404},
		{"healthz", "GET", "/healthz", "", true, 200},
		{"readyz", "GET", "/readyz", "", true, 200},
		{"metrics", "GET", "/metrics", "", true, 200},
		{"openapi", "GET", "/openapi.json", "", true, 200},
		{"docs", "GET", "/docs", "", true, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := ""
			if tt.body != "" {
				ct = "application/json"
			}
			got := do(t, ts.Client(), tt.method, ts.URL+tt.path, ct, tt.body)
			if got.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %.300s", got.status, tt.wantStatus, got.body)
			}
			req, err := http.NewRequest(tt.method, "http://sdgate"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no documented route for %s %s: %v", tt.method, tt.path, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if tt.validRequest {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("request does not match the document: %v", err)
				}
			}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 got.status,
				Header:                 got.header,
				Body:                   io.NopCloser(bytes.NewReader(got.body)),
				Options:                &openapi3filter.Options{IncludeResponseStatus: true},
			})
			if err != nil {
				t.Errorf("response does not match the document: %v", err)
			}
		})
	}
}

func TestDocsPageIsOffline(t *testing.T) {
	ts := startServer(t, newFakeGenerator())
	r := do(t, ts.Client(), "GET", ts.URL+"/docs", "", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("docs: %d %s", r.status, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	for _, want := range []string{"/v1/images/generations", "/v1/models/{model}", "CreateImageRequest",
		"negative_prompt", "one of vivid, natural", "&lt;= 150", "/metrics"} {
		if !strings.Contains(page, want) {
			t.Errorf("docs page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", `src="http`, `href="http`, "@import", "cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("docs page reaches outside (%q)", banned)
		}
	}
}
