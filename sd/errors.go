package sd

import (
	"errors"
	"fmt"
)

// ErrInvalidRequest marks a Request that Validate refused; errors.As with
// *ParamError tells which field.
var ErrInvalidRequest = errors.New("invalid request")

// ParamError says which request field is out of range and why. Param uses the
// OpenAI / sdgate wire name of the field (size, n, steps, guidance_scale, ...).
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string { return fmt.Sprintf("%s: %s", e.Param, e.Message) }

// Unwrap lets errors.Is(err, ErrInvalidRequest) hold for every ParamError.
func (e *ParamError) Unwrap() error { return ErrInvalidRequest }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Message: fmt.Sprintf(format, args...)}
}
