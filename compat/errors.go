package compat

import (
	"errors"
	"fmt"
)

// ErrInvalidRequest marks every client mistake found while decoding or
// validating a request; errors.As with *Error tells which field.
var ErrInvalidRequest = errors.New("invalid request")

// Error codes sdgate puts in the envelope's "code" for 400s. They are the
// codes OpenAI's current APIs use for the same mistakes.
const (
	CodeMissingParameter     = "missing_required_parameter"
	CodeInvalidType          = "invalid_type"
	CodeInvalidValue         = "invalid_value"
	CodeUnknownParameter     = "unknown_parameter"
	CodeUnsupportedParameter = "unsupported_parameter"
	CodeIntegerBelowMin      = "integer_below_min_value"
	CodeIntegerAboveMax      = "integer_above_max_value"
	CodeStringAboveMaxLength = "string_above_max_length"

	// Uploaded images and masks (edits and variations).
	CodeInvalidImageFormat = "invalid_image_format" // not PNG, JPEG or WebP (a mask: not PNG)
	CodeInvalidImage       = "invalid_image"        // undecodable, empty, or the wrong shape
	CodeImageTooLarge      = "image_too_large"      // over the family's byte limit or MaxSide
)

// Error is one invalid field (or an unparsable body when Param is empty).
// It becomes a 400 invalid_request_error with Param and Code in the envelope.
type Error struct {
	Param   string // wire name of the field; "" for the body as a whole
	Code    string // one of the Code constants; "" is sent as null
	Message string
}

func (e *Error) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Param, e.Message)
}

// Unwrap lets errors.Is(err, ErrInvalidRequest) hold for every *Error.
func (e *Error) Unwrap() error { return ErrInvalidRequest }

func fieldErr(param, code, format string, args ...any) *Error {
	return &Error{Param: param, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorResponse is OpenAI's error envelope. All four keys of the body are
// always present: Param and Code are null when unset.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the object inside the envelope.
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Error types used in the envelope's "type".
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeServerError    = "server_error"
	TypeRequests       = "requests"
)

// NewErrorResponse builds an envelope; empty param or code become null.
func NewErrorResponse(errType, message, param, code string) ErrorResponse {
	return ErrorResponse{Error: ErrorBody{
		Message: message,
		Type:    errType,
		Param:   nullable(param),
		Code:    nullable(code),
	}}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
