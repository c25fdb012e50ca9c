package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// StatusClientClosedRequest is what the access log and metrics record when
// the client left before the answer (nginx's 499); nothing is sent.
const StatusClientClosedRequest = 499

// messageServerError is OpenAI's wording for a 500; the cause is only logged.
const messageServerError = "The server had an error while processing your request. Sorry about that!"

// httpError is an error that already knows its status and envelope: routing
// misses, content types, bodies.
type httpError struct {
	status  int
	typ     string
	param   string
	code    string
	message string
	// retry sends the retry headers clients obey (after retryAfter);
	// noRetry tells them (X-Should-Retry: false) that retrying cannot help.
	retry      bool
	retryAfter time.Duration
	noRetry    bool
}

func (e *httpError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.message) }

func badRequest(message string) error {
	return &httpError{status: http.StatusBadRequest, typ: compat.TypeInvalidRequest, message: message}
}

// handle adapts a handler that returns an error to gin.
func (s *Server) handle(h func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.writeError(c, err)
		}
	}
}

// writeError is the one place errors become HTTP answers: status, OpenAI
// envelope, and the retry headers clients obey.
func (s *Server) writeError(c *gin.Context, err error) {
	c.Error(err) // recorded for the access log
	e := s.classify(err, c.Request.Context().Err() != nil)
	if e == nil { // the client is gone: log only
		c.Abort()
		c.Status(StatusClientClosedRequest)
		return
	}
	switch {
	case e.retry:
		setRetryHeaders(c, e.retryAfter)
	case e.noRetry:
		c.Header("X-Should-Retry", "false")
	}
	if e.status >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "status", e.status, "err", err)
	}
	c.AbortWithStatusJSON(e.status, compat.NewErrorResponse(e.typ, e.message, e.param, e.code))
}

// classify maps err to its answer, headers included, without writing
// anything; nil means the client left (clientGone) and cancelled it.
func (s *Server) classify(err error, clientGone bool) *httpError {
	var (
		he       *httpError
		ce       *compat.Error
		pe       *spec.ParamError
		tooLarge *http.MaxBytesError
		full     *models.QueueFullError
		missing  *modelNotFoundError
		broken   *models.ModelBrokenError
	)
	if e := classifyAuth(err); e != nil {
		return e
	}
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &ce):
		return &httpError{status: http.StatusBadRequest, typ: compat.TypeInvalidRequest,
			param: ce.Param, code: ce.Code, message: ce.Message}
	case errors.As(err, &pe):
		return &httpError{status: http.StatusBadRequest, typ: compat.TypeInvalidRequest,
			param: pe.Param, code: compat.CodeInvalidValue, message: fmt.Sprintf("Invalid '%s': %s", pe.Param, pe.Message)}
	case errors.Is(err, spec.ErrInvalidRequest):
		return &httpError{status: http.StatusBadRequest, typ: compat.TypeInvalidRequest, message: err.Error()}
	case errors.As(err, &tooLarge):
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: compat.TypeInvalidRequest,
			code: "request_too_large", message: fmt.Sprintf("Request body too large: the limit is %d bytes.", tooLarge.Limit)}
	case errors.Is(err, models.ErrModelNotFound):
		name := "requested"
		if errors.As(err, &missing) {
			name = missing.name
		}
		return &httpError{status: http.StatusNotFound, typ: compat.TypeInvalidRequest, param: "model",
			code: "model_not_found", message: fmt.Sprintf("The model '%s' does not exist or you do not have access to it.", name)}
	case errors.As(err, &broken):
		wait := max(time.Until(broken.RetryAt), time.Second)
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "model_unavailable",
			param: "model", retry: true, retryAfter: wait, message: fmt.Sprintf(
				"The model '%s' is unavailable: its files failed to load. It is retried when they change, or after %s.",
				broken.ID, secondsText(wait))}
	case errors.Is(err, models.ErrQueueFull):
		wait := s.opts.RetryAfter
		if errors.As(err, &full) && full.RetryAfter > 0 {
			wait = full.RetryAfter
		}
		msg := "The server is busy: the generation queue is full."
		if full != nil && full.Share {
			msg = "This API key already holds its share of the generation queue."
		}
		return &httpError{status: http.StatusTooManyRequests, typ: compat.TypeRequests, code: "rate_limit_exceeded", retry: true, retryAfter: wait,
			message: fmt.Sprintf("%s Please retry after %s.", msg, secondsText(wait))}
	case errors.Is(err, models.ErrQueueTimeout):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "engine_overloaded",
			retry: true, retryAfter: s.opts.RetryAfter, message: "The server is overloaded: the request waited too long for a free GPU. Please retry."}
	case errors.Is(err, models.ErrNoWorker):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "no_worker_available",
			retry: true, retryAfter: s.opts.RetryAfter, message: "No GPU worker serves this model right now. Please retry later."}
	case errors.Is(err, models.ErrClosed):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "engine_overloaded",
			retry: true, retryAfter: s.opts.RetryAfter, message: "The server is shutting down. Please retry."}
	case errors.Is(err, errImageStore):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "image_store_unavailable",
			retry: true, retryAfter: s.opts.RetryAfter, message: "The image store is unavailable. Please retry, or ask for response_format=b64_json."}
	case errors.Is(err, spec.ErrOutOfMemory):
		return &httpError{status: http.StatusServiceUnavailable, typ: compat.TypeServerError, code: "out_of_memory", noRetry: true,
			message: "The GPU ran out of memory for this request. Ask for a smaller size or fewer images."}
	case errors.Is(err, context.Canceled) && clientGone:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &httpError{status: http.StatusGatewayTimeout, typ: compat.TypeServerError, code: "timeout",
			message: "The request timed out."}
	}
	return &httpError{status: http.StatusInternalServerError, typ: compat.TypeServerError, message: messageServerError}
}

// setRetryHeaders tells clients when to retry, in the headers openai-python
// and openai-node read.
func setRetryHeaders(c *gin.Context, wait time.Duration) {
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	c.Header("Retry-After-Ms", strconv.FormatInt(wait.Milliseconds(), 10))
	c.Header("X-Should-Retry", "true")
}

func secondsText(d time.Duration) string {
	n := int(math.Ceil(d.Seconds()))
	if n == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", n)
}
