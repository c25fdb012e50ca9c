package compat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The JSON edit body (upstream's EditImageBodyJsonParam): images and the
// mask are references, {"image_url": "..."} or {"file_id": "..."}, instead
// of file parts. sdgate takes images inline as data URLs only: it has no
// Files API and fetches nothing from the network.

// Field names of a JSON edit's uploads (Upload.Field).
const (
	FieldImages = "images"
	FieldMask   = "mask"
)

// DecodeImageEditJSON parses an application/json edits body. Unknown
// fields are rejected and null counts as omitted, as for generations; each
// data URL is decoded (at most MaxUploadBytes) into an Upload. Model rules
// are ValidateEdit's job.
func DecodeImageEditJSON(body []byte) (ImageEditRequest, error) {
	req := ImageEditRequest{JSON: true}
	fields, err := decodeObject(body)
	if err != nil {
		return req, err
	}
	decoders := map[string]func(json.RawMessage, string) error{
		"images":             imagesInto(&req.Images),
		"mask":               maskInto(&req.Mask),
		"prompt":             stringInto(&req.Prompt),
		"model":              stringInto(&req.Model),
		"n":                  intInto(&req.N),
		"size":               stringInto(&req.Size),
		"quality":            stringInto(&req.Quality),
		"response_format":    stringInto(&req.ResponseFormat),
		"output_format":      stringInto(&req.OutputFormat),
		"output_compression": intInto(&req.OutputCompression),
		"background":         stringInto(&req.Background),
		"moderation":         stringInto(&req.Moderation),
		"input_fidelity":     stringInto(&req.InputFidelity),
		"user":               stringInto(&req.User),
		"stream":             boolInto(&req.Stream),
		"partial_images":     intInto(&req.PartialImages),
		"negative_prompt":    stringInto(&req.NegativePrompt),
		"seed":               uint64Into(&req.Seed),
		"steps":              intInto(&req.Steps),
		"guidance_scale":     floatInto(&req.GuidanceScale),
		"scheduler":          stringInto(&req.Scheduler),
		"strength":           floatInto(&req.Strength),
		"loras":              lorasInto(&req.LoRAs),
	}
	for _, name := range sortedNames(fields) {
		decode, ok := decoders[name]
		if !ok {
			return req, fieldErr(name, CodeUnknownParameter, "Unrecognized request argument supplied: %s", name)
		}
		if err := decode(fields[name], name); err != nil {
			return req, err
		}
	}
	return req, nil
}

func imagesInto(dst *[]Upload) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		var refs []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &refs) != nil {
			return typeErr(param, "an array", raw)
		}
		// Count before decoding: a body of many images costs nothing to refuse.
		if len(refs) > MaxEditImages {
			return fieldErr(param, CodeInvalidValue,
				"Invalid '%s': at most %d images, but %d were sent.", param, MaxEditImages, len(refs))
		}
		for i, ref := range refs {
			u, err := decodeImageRef(ref, fmt.Sprintf("%s[%d]", param, i), FieldImages)
			if err != nil {
				return err
			}
			*dst = append(*dst, u)
		}
		return nil
	}
}

func maskInto(dst **Upload) func(json.RawMessage, string) error {
	return func(raw json.RawMessage, param string) error {
		if isNull(raw) {
			return nil
		}
		u, err := decodeImageRef(raw, param, FieldMask)
		if err != nil {
			return err
		}
		*dst = &u
		return nil
	}
}

// decodeImageRef reads one {"image_url"} / {"file_id"} object named param.
func decodeImageRef(raw json.RawMessage, param, field string) (Upload, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return Upload{}, typeErr(param, "an object with 'image_url' or 'file_id'", raw)
	}
	members, err := decodeObject(raw)
	if err != nil {
		return Upload{}, err
	}
	var url, fileID string
	for _, name := range sortedNames(members) {
		var dst *string
		switch name {
		case "image_url":
			dst = &url
		case "file_id":
			dst = &fileID
		default:
			return Upload{}, fieldErr(param+"."+name, CodeUnknownParameter,
				"Unrecognized request argument supplied: %s.%s", param, name)
		}
		if err := stringInto(dst)(members[name], param+"."+name); err != nil {
			return Upload{}, err
		}
	}
	switch {
	case url != "" && fileID != "":
		return Upload{}, fieldErr(param, CodeInvalidValue,
			"Invalid '%s': provide exactly one of 'image_url' or 'file_id', not both.", param)
	case fileID != "":
		return Upload{}, fieldErr(param+".file_id", CodeUnsupportedParameter,
			"Invalid '%s.file_id': sdgate has no Files API and does not fetch file ids; send the image inline as a data URL in 'image_url' (data:image/png;base64,...).", param)
	case url == "":
		return Upload{}, fieldErr(param, CodeMissingParameter,
			"Missing required parameter: '%s.image_url'.", param)
	}
	return uploadFromURL(url, param+".image_url", field)
}

// uploadFromURL decodes a data URL; remote URLs are refused by name.
func uploadFromURL(url, param, field string) (Upload, error) {
	lower := strings.ToLower(url[:min(len(url), 8)])
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return Upload{}, fieldErr(param, CodeUnsupportedParameter,
			"Invalid '%s': sdgate does not fetch remote image URLs; send the image inline as a data URL (data:image/png;base64,...).", param)
	}
	mediaType, data, err := ParseDataURL(url, MaxUploadBytes)
	switch {
	case errors.Is(err, ErrDataURLTooLarge):
		return Upload{}, fieldErr(param, CodeImageTooLarge,
			"Invalid '%s': the image must be less than %d MB.", param, MaxUploadBytes>>20)
	case errors.Is(err, ErrDataURLType):
		return Upload{}, fieldErr(param, CodeInvalidImageFormat,
			"Invalid '%s': the data URL's media type must be image/png, image/jpeg or image/webp.", param)
	case err != nil:
		return Upload{}, fieldErr(param, CodeInvalidValue,
			"Invalid '%s': expected a base64 data URL such as data:image/png;base64,... (%v).", param, err)
	}
	return Upload{Field: field, ContentType: mediaType, Data: data}, nil
}
