// Admission before work: everything an image request can be refused for
// from its headers and text fields (key, model access, queue room, quota,
// rate) is decided before a pixel is decoded or the GPU is asked.

package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/models"
)

// QueueChecker is what a Backend may offer to refuse a request whose job
// would not fit in the GPU queue before the request does any work. It is
// optional: without it the queue refuses at Generate, after the decode.
type QueueChecker interface {
	// CheckQueue answers *models.QueueFullError (or models.ErrClosed) when
	// a job enqueued now would be refused, nil when it would be taken.
	CheckQueue() error
}

var _ QueueChecker = (*models.Registry)(nil)

// ctxAdmission holds the *earlyAdmission of a request admitted by
// admitEarly, which metered then takes over.
const ctxAdmission = "sdgate.admission"

type earlyAdmission struct {
	adm   *auth.Admission // nil without a gate
	taken bool            // metered owns it now
}

// admitEarly decides, from what the client declared (model, n), whether
// the request may go on: the key may use the model, the queue has room,
// the key's quota and per-minute limits allow n images. The admission it
// takes must be settled: by metered once the request gets there, or by
// settleEarly if it fails before (a decode error, a pixel bound).
func (s *Server) admitEarly(c *gin.Context, t Target, n int) error {
	if v, ok := c.Get(ctxAdmission); ok && v != nil {
		return nil // already admitted
	}
	adm, err := s.admitTarget(c, t, n)
	if err != nil {
		return err
	}
	c.Set(ctxAdmission, &earlyAdmission{adm: adm})
	return nil
}

// admitTarget is admission proper; admitEarly and metered share it.
func (s *Server) admitTarget(c *gin.Context, t Target, n int) (*auth.Admission, error) {
	if err := checkAccess(c, t); err != nil {
		return nil, err
	}
	// A request that could not be metered must not run: refuse it now,
	// not after the GPU made images nobody may hand out.
	if s.opts.Gate != nil {
		if err := s.opts.Gate.Writable(c.Request.Context()); err != nil {
			return nil, err
		}
	}
	if qc, ok := s.gen.(QueueChecker); ok {
		if err := qc.CheckQueue(); err != nil {
			return nil, err
		}
	}
	return s.admit(c, t.ModelID, n)
}

// checkAccess refuses a model the caller's key may not use, in the
// client's own words: a key restricted to other models learns nothing
// about what the name resolves to.
func checkAccess(c *gin.Context, t Target) error {
	if k := callerKey(c); k != nil && !k.CanUse(t.ModelID) {
		return &auth.ModelError{Model: t.Name}
	}
	return nil
}

// takeAdmission hands a request's early admission to metered; ok is false
// when the request was not admitted early.
func takeAdmission(c *gin.Context) (*auth.Admission, bool) {
	v, ok := c.Get(ctxAdmission)
	if !ok {
		return nil, false
	}
	ea, _ := v.(*earlyAdmission)
	if ea == nil || ea.taken {
		return nil, false
	}
	ea.taken = true
	return ea.adm, true
}

// settleEarly finishes an early admission that metered never took: the
// request failed between admission and the GPU (a bad image, a pixel
// bound). Its usage record says so and its reserved images go back.
func (s *Server) settleEarly(c *gin.Context, endpoint string, err error) {
	adm, ok := takeAdmission(c)
	if !ok || adm == nil {
		return
	}
	status := http.StatusOK
	if err != nil {
		status = statusOf(s.classify(err, c.Request.Context().Err() != nil))
	}
	u := auth.Usage{RequestID: requestID(c), Endpoint: endpoint, Status: status}
	if ferr := adm.Finish(context.WithoutCancel(c.Request.Context()), u); ferr != nil && !errors.Is(ferr, auth.ErrFinished) {
		s.log.Error("usage record lost", "request_id", u.RequestID, "err", ferr)
	}
}
