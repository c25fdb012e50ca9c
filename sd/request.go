package sd

import (
	"fmt"

	"github.com/sdgate/sdgate/sd/spec"
)

// The value types a generation takes and gives live in the cgo-free leaf
// sd/spec, so the API layers and the model registry use them without cgo;
// these aliases are sd's own names for them.
type (
	Request = spec.Request
	Image   = spec.Image
	Result  = spec.Result
	Spec    = spec.Model
)

// DefaultStrength is spec.DefaultStrength.
const DefaultStrength = spec.DefaultStrength

// Errors the layers above classify (by errors.Is / errors.As).
var (
	ErrInvalidRequest = spec.ErrInvalidRequest
	ErrOutOfMemory    = spec.ErrOutOfMemory
	ErrBadModel       = spec.ErrBadModel
	ErrNotLoaded      = spec.ErrNotLoaded
)

// ParamError is spec.ParamError.
type ParamError = spec.ParamError

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Message: fmt.Sprintf(format, args...)}
}
