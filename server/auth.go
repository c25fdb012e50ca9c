package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/compat"
)

// storeRetryAfter is the Retry-After of a request refused because usage
// cannot be recorded: long enough for an operator to notice, short enough
// to pick up a recovery.
const storeRetryAfter = 5 * time.Second

// keyContextKey holds the caller's *auth.Key in the gin context.
const keyContextKey = "sdgate.key"

// authenticate is the /v1 middleware when a Gate is configured: it resolves
// the key from Authorization: Bearer (or Azure's api-key header) and puts
// the key's current rate-limit headers on the response, whatever follows.
func (s *Server) authenticate(c *gin.Context) {
	key, err := s.opts.Gate.Authenticate(c.Request.Context(), c.GetHeader("Authorization"), c.GetHeader("api-key"))
	if err != nil {
		if c.Request.ContentLength != 0 {
			// The body is never read: closing beats waiting for it.
			c.Header("Connection", "close")
		}
		s.writeError(c, err)
		return
	}
	c.Set(keyContextKey, key)
	s.opts.Gate.RateHeaders(c.Request.Context(), key).Apply(c.Header)
	c.Next()
}

// callerKey is the authenticated key, nil when auth is off.
func callerKey(c *gin.Context) *auth.Key {
	if v, ok := c.Get(keyContextKey); ok {
		k, _ := v.(*auth.Key)
		return k
	}
	return nil
}

// classifyAuth maps the auth package's errors to OpenAI's answers; nil when
// err is not one of them.
func classifyAuth(err error) *httpError {
	var (
		ke *auth.KeyError
		me *auth.ModelError
		rl *auth.RateLimitError
		qe *auth.QuotaError
	)
	switch {
	case errors.As(err, &ke):
		return &httpError{status: http.StatusUnauthorized, typ: compat.TypeInvalidRequest, code: "invalid_api_key", message: ke.Error()}
	case errors.As(err, &me):
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, param: "model", code: "model_not_found", message: me.Error()}
	case errors.As(err, &rl):
		e := &httpError{status: http.StatusTooManyRequests, typ: compat.TypeRequests, code: "rate_limit_exceeded", message: rl.Error()}
		if rl.TooLarge {
			e.noRetry = true
		} else {
			e.retry, e.retryAfter = true, rl.RetryAfter
		}
		return e
	case errors.As(err, &qe):
		return &httpError{status: http.StatusTooManyRequests, typ: "insufficient_quota", code: "insufficient_quota", noRetry: true, message: qe.Error()}
	case errors.Is(err, auth.ErrRateLimiterUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "rate_limiter_unavailable",
			retry: true, retryAfter: time.Second, message: "The rate limiter is unavailable, so no request can be admitted. Please retry."}
	case errors.Is(err, auth.ErrNotAdmin):
		return &httpError{status: http.StatusForbidden, typ: compat.TypeInvalidRequest, code: "insufficient_permissions", message: err.Error()}
	case errors.Is(err, auth.ErrKeyNotFound):
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, code: "key_not_found", message: err.Error()}
	case errors.Is(err, auth.ErrInvalidKeySpec):
		return &httpError{status: http.StatusBadRequest, typ: compat.TypeInvalidRequest, code: compat.CodeInvalidValue, message: err.Error()}
	case errors.Is(err, auth.ErrStoreUnwritable):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "usage_store_unavailable",
			retry: true, retryAfter: storeRetryAfter,
			message: "The server cannot record usage right now (its data store refuses writes), so it runs no requests. Please retry later."}
	case errors.Is(err, auth.ErrKeyStoreUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "key_store_unavailable",
			retry: true, retryAfter: storeRetryAfter,
			message: "The server cannot check API keys right now (its key store does not answer). Please retry later."}
	case errors.Is(err, auth.ErrLastAdmin):
		return &httpError{status: http.StatusConflict, typ: compat.TypeInvalidRequest, code: "last_admin_key", message: err.Error()}
	case errors.Is(err, auth.ErrStaticKey):
		return &httpError{status: http.StatusConflict, typ: compat.TypeInvalidRequest, message: err.Error()}
	}
	return nil
}

// usage is GET /v1/usage[?key_id=ID|*][&since=2026-11-01][&group_by=model]:
// usage by day of the caller's key (and by model); admin keys may name any
// key or "*" for all.
func (s *Server) usage(c *gin.Context) error {
	if err := s.usageRecorded(); err != nil {
		return err
	}
	since := s.opts.Now().UTC().AddDate(0, 0, -30)
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return &compat.Error{Param: "since", Code: compat.CodeInvalidValue, Message: fmt.Sprintf("Invalid 'since': %q is not a date like 2026-11-01.", v)}
		}
		since = t
	}
	byDay := s.opts.Gate.Usage
	switch g := c.Query("group_by"); g {
	case "":
	case "model":
		byDay = s.opts.Gate.UsageByModel
	default:
		return &compat.Error{Param: "group_by", Code: compat.CodeInvalidValue, Message: fmt.Sprintf("Invalid 'group_by': %q. Supported values are: 'model'.", g)}
	}
	days, err := byDay(c.Request.Context(), callerKey(c), c.Query("key_id"), since)
	if err != nil {
		return err
	}
	out := make([]usageDay, len(days))
	for i, d := range days {
		out[i] = usageDay{Object: "usage.day", Date: d.Day, KeyID: d.KeyID, Model: d.Model, Requests: d.Requests, Failed: d.Failed,
			Cached: d.Cached, Images: d.Images, Pixels: d.Pixels, Steps: d.Steps, GPUSeconds: d.GPUSeconds}
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": out})
	return nil
}

func (s *Server) usageRecorded() error {
	if s.opts.Gate == nil {
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, message: "Usage is not recorded: this server runs without API keys."}
	}
	return nil
}

type usageDay struct {
	Object     string  `json:"object"`
	Date       string  `json:"date"`
	KeyID      string  `json:"key_id"`
	Model      string  `json:"model,omitempty"`
	Requests   int64   `json:"requests"`
	Failed     int64   `json:"failed"`
	Cached     int64   `json:"cached"`
	Images     int64   `json:"images"`
	Pixels     int64   `json:"pixels"`
	Steps      int64   `json:"steps"`
	GPUSeconds float64 `json:"gpu_seconds"`
}

// maxRecentRequests bounds GET /v1/usage/requests?limit=.
const maxRecentRequests = 500

// recentUsage is GET /v1/usage/requests[?key_id=ID|*][&limit=50]: the
// newest usage records, by the same access rules as /v1/usage.
func (s *Server) recentUsage(c *gin.Context) error {
	if err := s.usageRecorded(); err != nil {
		return err
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRecentRequests {
			return &compat.Error{Param: "limit", Code: compat.CodeInvalidValue, Message: fmt.Sprintf("Invalid 'limit': %q. Expected an integer between 1 and %d.", v, maxRecentRequests)}
		}
		limit = n
	}
	recs, err := s.opts.Gate.RecentUsage(c.Request.Context(), callerKey(c), c.Query("key_id"), limit)
	if err != nil {
		return err
	}
	out := make([]usageRequest, len(recs))
	for i, r := range recs {
		out[i] = usageRequest{Object: "usage.request", ID: r.RequestID, KeyID: r.KeyID, CreatedAt: r.At.Unix(), Model: r.Model,
			Endpoint: r.Endpoint, Status: r.Status, Cached: r.Cached, Images: r.Images, Pixels: r.Pixels, Steps: r.Steps,
			DurationMS: r.Duration.Milliseconds(), GPUSeconds: r.GPUSeconds, Family: r.Family, GeneratedSize: r.Generated}
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": out})
	return nil
}

type usageRequest struct {
	Object     string  `json:"object"`
	ID         string  `json:"id"` // the request id (X-Request-Id)
	KeyID      string  `json:"key_id"`
	CreatedAt  int64   `json:"created_at"`
	Model      string  `json:"model"`
	Endpoint   string  `json:"endpoint"`
	Status     int     `json:"status"`
	Cached     bool    `json:"cached"`
	Images     int     `json:"images"`
	Pixels     int64   `json:"pixels"`
	Steps      int     `json:"steps"`
	DurationMS int64   `json:"duration_ms"`
	GPUSeconds float64 `json:"gpu_seconds"`
	// The model family and the size the images were generated at (the
	// model's native bucket; the answer is resized from it).
	Family        string `json:"family,omitempty"`
	GeneratedSize string `json:"generated_size,omitempty"`
}

// wireLimits are a key's limits on the wire (0: unlimited).
type wireLimits struct {
	RequestsPerMinute int   `json:"requests_per_minute"`
	ImagesPerMinute   int   `json:"images_per_minute"`
	ImagesPerDay      int   `json:"images_per_day"`
	ImageQuota        int64 `json:"image_quota"`
}

func toWireLimits(l auth.Limits) wireLimits {
	return wireLimits{RequestsPerMinute: l.RequestsPerMinute, ImagesPerMinute: l.ImagesPerMinute, ImagesPerDay: l.ImagesPerDay, ImageQuota: l.ImageQuota}
}

func (l wireLimits) auth() auth.Limits {
	return auth.Limits{RequestsPerMinute: l.RequestsPerMinute, ImagesPerMinute: l.ImagesPerMinute, ImagesPerDay: l.ImagesPerDay, ImageQuota: l.ImageQuota}
}

// keyView is a key as the admin endpoints show it: never its secret.
type keyView struct {
	Object     string     `json:"object"`
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Hint       string     `json:"redacted_value"`
	CreatedAt  int64      `json:"created_at"`
	LastUsedAt *int64     `json:"last_used_at"`
	ExpiresAt  *int64     `json:"expires_at"`
	Revoked    bool       `json:"revoked"`
	Admin      bool       `json:"admin"`
	Models     []string   `json:"models"`
	Limits     wireLimits `json:"limits"`
	Static     bool       `json:"static"`
	Value      string     `json:"value,omitempty"` // only in the answer to create
}

func unixOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func viewKey(k *auth.Key) keyView {
	models := k.Models
	if models == nil {
		models = []string{}
	}
	return keyView{Object: "api_key", ID: k.ID, Name: k.Name, Hint: k.Hint, CreatedAt: k.CreatedAt.Unix(),
		LastUsedAt: unixOrNil(k.LastUsedAt), ExpiresAt: unixOrNil(k.ExpiresAt), Revoked: k.Revoked(),
		Admin: k.Admin, Models: models, Limits: toWireLimits(k.Limits), Static: k.Static}
}

// requireAdmin guards the admin endpoints.
func (s *Server) requireAdmin(c *gin.Context) error {
	if s.opts.Gate == nil {
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, message: "Key administration is off: this server runs without API keys."}
	}
	return auth.RequireAdmin(callerKey(c))
}

// listKeys is GET /v1/admin/keys.
func (s *Server) listKeys(c *gin.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	keys, err := s.opts.Gate.ListKeys(c.Request.Context())
	if err != nil {
		return err
	}
	out := make([]keyView, len(keys))
	for i := range keys {
		out[i] = viewKey(&keys[i])
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": out})
	return nil
}

// createKeyRequest is the body of POST /v1/admin/keys.
type createKeyRequest struct {
	Name      string     `json:"name"`
	Limits    wireLimits `json:"limits"`
	Models    []string   `json:"models"`
	Admin     bool       `json:"admin"`
	ExpiresAt *int64     `json:"expires_at"` // unix seconds
}

// createKey is POST /v1/admin/keys: the answer holds the key, once.
func (s *Server) createKey(c *gin.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	body, err := readJSONBody(c.Request)
	if err != nil {
		return err
	}
	var req createKeyRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest(fmt.Sprintf("We could not parse the JSON body of your request: %v", err))
	}
	spec := auth.KeySpec{Name: req.Name, Limits: req.Limits.auth(), Models: req.Models, Admin: req.Admin}
	if req.ExpiresAt != nil {
		spec.ExpiresAt = time.Unix(*req.ExpiresAt, 0)
	}
	secret, key, err := s.opts.Gate.CreateKey(c.Request.Context(), spec)
	if err != nil {
		return err
	}
	v := viewKey(key)
	v.Value = secret
	c.JSON(http.StatusCreated, v)
	return nil
}

// revokeKey is DELETE /v1/admin/keys/:id.
func (s *Server) revokeKey(c *gin.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	if err := s.opts.Gate.RevokeKeyKeepingAdmin(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"object": "api_key.deleted", "id": c.Param("id"), "deleted": true})
	return nil
}
