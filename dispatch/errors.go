package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

var (
	// ErrNoWorker: no live worker advertises the model; the gateway
	// answers 503 (models.ErrNoWorker, so the server needs no import of
	// this package).
	ErrNoWorker = models.ErrNoWorker
	// ErrQueueFull: the model's stream holds its bound of jobs; the error
	// is a *models.QueueFullError carrying a Retry-After estimate.
	ErrQueueFull = models.ErrQueueFull
	// ErrWorker: the worker failed the job for a reason the API does not
	// classify (its message says which).
	ErrWorker = errors.New("worker failed the job")
	// ErrBadMessage: a message from the network did not decode or broke a
	// bound.
	ErrBadMessage = errors.New("dispatch: bad message")
)

// Wire error codes: how a worker's error crosses the network and becomes
// the same Go error the in-process registry would have returned.
const (
	codeParam      = "invalid_param"
	codeInvalid    = "invalid_request"
	codeNotFound   = "model_not_found"
	codeOOM        = "out_of_memory"
	codeDeadline   = "deadline_exceeded"
	codeCanceled   = "canceled"
	codeInternal   = "internal"
	maxErrorString = 4 << 10
)

// wireError is an error as a result object carries it.
type wireError struct {
	Code    string `json:"code"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

// toWire classifies err for the gateway.
func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	var pe *spec.ParamError
	switch {
	case errors.As(err, &pe):
		return &wireError{Code: codeParam, Param: pe.Param, Message: pe.Message}
	case errors.Is(err, spec.ErrInvalidRequest):
		return &wireError{Code: codeInvalid, Message: err.Error()}
	case errors.Is(err, models.ErrModelNotFound):
		return &wireError{Code: codeNotFound, Message: err.Error()}
	case errors.Is(err, spec.ErrOutOfMemory):
		return &wireError{Code: codeOOM, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &wireError{Code: codeDeadline, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &wireError{Code: codeCanceled, Message: err.Error()}
	}
	return &wireError{Code: codeInternal, Message: err.Error()}
}

// err turns a wire error back into the sentinel the server classifies.
func (e *wireError) err() error {
	msg := e.Message
	if len(msg) > maxErrorString {
		msg = msg[:maxErrorString]
	}
	switch e.Code {
	case codeParam:
		return &spec.ParamError{Param: e.Param, Message: msg}
	case codeInvalid:
		return fmt.Errorf("%w: worker: %s", spec.ErrInvalidRequest, msg)
	case codeNotFound:
		return fmt.Errorf("%w: worker: %s", models.ErrModelNotFound, msg)
	case codeOOM:
		return fmt.Errorf("%w: worker: %s", spec.ErrOutOfMemory, msg)
	case codeDeadline:
		return fmt.Errorf("%w: worker: %s", context.DeadlineExceeded, msg)
	case codeCanceled:
		return fmt.Errorf("%w: worker: %s", context.Canceled, msg)
	}
	return fmt.Errorf("%w: %s", ErrWorker, msg)
}
