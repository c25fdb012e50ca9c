package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"slices"
	"strconv"
)

// Upload is one file part of a multipart request. ContentType is what the
// client declared and is not trusted: go-openai sends application/octet-
// stream and an empty filename, so files are recognised by their bytes.
type Upload struct {
	Field       string // wire name: "image", "image[]" or "mask"
	Filename    string
	ContentType string
	Data        []byte
}

// Multipart limits. The whole body is capped by the server before it is
// read; these bound single parts so one field cannot take all of it.
const (
	MaxUploadBytes = 50 << 20  // one file (the GPT image models' limit)
	MaxValueBytes  = 256 << 10 // one text field (a 32000-character prompt in 4-byte runes, twice over)
	MaxFormParts   = 64        // every part, files and text
)

// ErrMalformedMultipart: the body is not a well-formed multipart/form-data
// stream for the given boundary. It reaches the client as a 400 *Error.
var ErrMalformedMultipart = errors.New("malformed multipart body")

// form is a multipart body read into memory: text fields by wire name,
// files in the order sent.
type form struct {
	values     map[string]string
	files      []Upload
	loraFields []formField // loras[...][...], which may repeat (formloras.go)
}

// trackingReader remembers the first error of the reader below, so that a
// transport failure or the server's size cap (which must stay a 413 or a
// dropped connection) is told apart from a malformed body (a 400).
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// readForm reads every part. Parts named in fileFields are files; others
// are text, and each text name may appear once. Errors are *Error for the
// client's mistakes and the underlying reader's error (wrapped) otherwise.
func readForm(r io.Reader, boundary string, fileFields map[string]bool) (form, error) {
	f := form{values: map[string]string{}}
	if boundary == "" {
		return f, &Error{Message: "Invalid multipart body: the Content-Type header has no boundary."}
	}
	tr := &trackingReader{r: r}
	mr := multipart.NewReader(tr, boundary)
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return f, bodyErr(tr, err)
		}
		if parts == MaxFormParts {
			return f, &Error{Message: fmt.Sprintf("Invalid multipart body: more than %d parts.", MaxFormParts)}
		}
		name := p.FormName()
		if name == "" {
			return f, &Error{Message: "Invalid multipart body: a part has no form-data name."}
		}
		limit := int64(MaxValueBytes)
		if fileFields[name] {
			limit = MaxUploadBytes
		}
		data, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return f, bodyErr(tr, err)
		}
		if int64(len(data)) > limit {
			return f, tooLarge(name, fileFields[name], limit)
		}
		if fileFields[name] {
			f.files = append(f.files, Upload{Field: name, Filename: p.FileName(),
				ContentType: p.Header.Get("Content-Type"), Data: data})
			continue
		}
		if isLoRAField(name) {
			f.loraFields = append(f.loraFields, formField{name, string(data)})
			continue
		}
		if _, dup := f.values[name]; dup {
			return f, fieldErr(name, CodeInvalidValue, "Invalid '%s': the field was sent more than once.", name)
		}
		f.values[name] = string(data)
	}
}

// bodyErr keeps the reader's own failure (a size cap, a broken connection)
// as it is and reports everything else as a malformed body.
func bodyErr(tr *trackingReader, err error) error {
	if tr.err != nil {
		return fmt.Errorf("read multipart body: %w", tr.err)
	}
	return &Error{Message: fmt.Sprintf("Invalid multipart body: %v.", errors.Join(ErrMalformedMultipart, err))}
}

func tooLarge(name string, file bool, limit int64) error {
	if file {
		return fieldErr(paramOf(name), CodeImageTooLarge,
			"Invalid '%s': the file is larger than %d MB.", paramOf(name), limit>>20)
	}
	return fieldErr(name, CodeStringAboveMaxLength, "Invalid '%s': the value is longer than %d bytes.", name, limit)
}

// paramOf names a file field the way errors do: image[] is image.
func paramOf(field string) string {
	if field == "image[]" {
		return "image"
	}
	return field
}

// fieldDecoder stores one text value into a request field.
type fieldDecoder func(value, param string) error

// decodeValues applies a decoder to every text field, in name order so the
// same body always reports the same error; names without one are unknown.
func decodeValues(values map[string]string, decoders map[string]fieldDecoder) error {
	for _, name := range sortedNames(values) {
		decode, ok := decoders[name]
		if !ok {
			return fieldErr(name, CodeUnknownParameter, "Unrecognized request argument supplied: %s", name)
		}
		if err := decode(values[name], name); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Text field decoders. An empty value means omitted, as it does in JSON
// bodies; clients such as go-openai send every field, empty or not.

func textInto(dst *string) fieldDecoder {
	return func(v, _ string) error {
		*dst = v
		return nil
	}
}

func formIntInto(dst **int) fieldDecoder {
	return func(v, param string) error {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 0)
		if err != nil {
			return formIntErr(param, v, err)
		}
		i := int(n)
		*dst = &i
		return nil
	}
}

// formCountInto is n: go-openai sends n=0 when the caller left it unset.
func formCountInto(dst **int) fieldDecoder {
	decode := formIntInto(dst)
	return func(v, param string) error {
		if v == "0" {
			return nil
		}
		return decode(v, param)
	}
}

func formUint64Into(dst **uint64) fieldDecoder {
	return func(v, param string) error {
		if v == "" {
			return nil
		}
		if len(v) > 1 && v[0] == '-' {
			if _, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
				return fieldErr(param, CodeIntegerBelowMin,
					"Invalid '%s': integer below minimum value. Expected a value >= 0, but got %s instead.", param, v)
			}
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return formIntErr(param, v, err)
		}
		*dst = &n
		return nil
	}
}

func formIntErr(param, v string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		if v[0] == '-' {
			return fieldErr(param, CodeIntegerBelowMin, "Invalid '%s': integer below minimum value.", param)
		}
		return fieldErr(param, CodeIntegerAboveMax, "Invalid '%s': integer above maximum value.", param)
	}
	return fieldErr(param, CodeInvalidType, "Invalid type for '%s': expected an integer, but got '%s' instead.", param, clip(v))
}

func formFloatInto(dst **float64) fieldDecoder {
	return func(v, param string) error {
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fieldErr(param, CodeInvalidType, "Invalid type for '%s': expected a number, but got '%s' instead.", param, clip(v))
		}
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fieldErr(param, CodeInvalidValue, "Invalid '%s': %s is not a finite number.", param, clip(v))
		}
		*dst = &f
		return nil
	}
}

func formBoolInto(dst **bool) fieldDecoder {
	return func(v, param string) error {
		if v == "" {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fieldErr(param, CodeInvalidType, "Invalid type for '%s': expected a boolean, but got '%s' instead.", param, clip(v))
		}
		*dst = &b
		return nil
	}
}

// clip shortens a client's value for an error message.
func clip(v string) string {
	const most = 40
	if len(v) <= most {
		return v
	}
	return string(bytes.ToValidUTF8([]byte(v[:most]), nil)) + "..."
}
