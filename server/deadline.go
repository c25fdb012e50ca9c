// Body deadlines: a client gets BodyTimeout to send its request body, and
// the deadline is lifted once the body is read, so a long generation or an
// SSE stream that follows is never cut. (http.Server's ReadTimeout would
// stay on the connection and cancel the request's context mid-generation.)

package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/compat"
)

// DefaultBodyTimeout is how long a client has to send its whole body.
const DefaultBodyTimeout = 2 * time.Minute

// timedBody sets the connection's read deadline for the body and returns
// body wrapped to lift it when the body ends. A deadline hit is left in
// place, so the server closes that connection rather than wait on the
// client again. A request without a body, or a writer without deadlines
// (tests' recorders), keeps body as it is.
func (s *Server) timedBody(c *gin.Context, body io.ReadCloser) io.ReadCloser {
	if c.Request.Body == nil || c.Request.Body == http.NoBody || c.Request.ContentLength == 0 {
		return body
	}
	d := &deadlineBody{ReadCloser: body, rc: *http.NewResponseController(c.Writer), limit: s.opts.BodyTimeout,
		// HTTP/1's server clears the connection's read deadline itself when
		// the body ends (it starts watching for the client going away):
		// lifting it again is a second timer change on every request.
		// TestBodyTimeoutSparesLongGenerations holds it to that.
		lifted: c.Request.ProtoMajor == 1}
	if err := d.rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout)); err != nil {
		return body
	}
	return d
}

// withBody gives the handlers a shallow copy of the request reading body.
// net/http decides what to do with an unread body (close the connection
// when much is left, rather than wait for it) by looking at the original
// request's Body: replacing that field in place would make it wait.
func withBody(c *gin.Context, body io.ReadCloser) {
	r := c.Request.WithContext(c.Request.Context())
	r.Body = body
	c.Request = r
}

// deadlineBody lifts the read deadline once the body is done (where the
// server does not) and turns a deadline hit into a 408.
type deadlineBody struct {
	io.ReadCloser
	rc     http.ResponseController
	limit  time.Duration
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		b.lift()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, &httpError{status: http.StatusRequestTimeout, typ: compat.TypeInvalidRequest, code: "request_timeout",
			message: fmt.Sprintf("The request body was not received within %s.", b.limit)}
	}
	return n, err
}

func (b *deadlineBody) lift() {
	if !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{}) // the connection may be gone: nothing to lift then
	}
}
