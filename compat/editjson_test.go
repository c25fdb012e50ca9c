package compat

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func dataURL(data []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(data)
}

func TestDecodeImageEditJSON(t *testing.T) {
	img, mask := []byte("IMAGE"), []byte("MASK")
	body := `{"model":"gpt-image-1.5","prompt":"a hat","images":[{"image_url":"` + dataURL(img) + `"}],` +
		`"mask":{"image_url":"` + dataURL(mask) + `"},"n":2,"size":"1024x1536","quality":"high",` +
		`"output_format":"webp","output_compression":80,"background":"opaque","moderation":"low",` +
		`"input_fidelity":"high","user":"u","stream":false,"partial_images":null,"seed":7}`
	req, err := DecodeImageEditJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !req.JSON || len(req.Images) != 1 || !bytes.Equal(req.Images[0].Data, img) || req.Images[0].Field != FieldImages ||
		req.Images[0].ContentType != "image/png" || req.Mask == nil || !bytes.Equal(req.Mask.Data, mask) ||
		req.Mask.Field != FieldMask {
		t.Fatalf("uploads: %+v", req)
	}
	if req.Prompt != "a hat" || req.Model != "gpt-image-1.5" || *req.N != 2 || req.Size != "1024x1536" ||
		req.Quality != "high" || req.OutputFormat != "webp" || *req.OutputCompression != 80 ||
		req.Background != "opaque" || req.Moderation != "low" || req.InputFidelity != "high" ||
		req.User != "u" || *req.Stream || req.PartialImages != nil || *req.Seed != 7 {
		t.Fatalf("fields: %+v", req)
	}
	if err := ValidateEdit(req, mustRules(t, FamilyGPTImage15)); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

func TestDecodeImageEditJSONErrors(t *testing.T) {
	ok := `{"image_url":"` + dataURL([]byte("x")) + `"}`
	big := strings.Repeat("A", (MaxUploadBytes/3+1)*4)
	tests := []struct {
		name, body, wantParam, wantCode string
	}{
		{"not JSON", `images`, "", ""},
		{"unknown field", `{"prompt":"p","image":"x"}`, "image", CodeUnknownParameter},
		{"images not an array", `{"images":{"image_url":"x"}}`, "images", CodeInvalidType},
		{"image not an object", `{"images":["data:image/png;base64,AA"]}`, "images[0]", CodeInvalidType},
		{"unknown ref member", `{"images":[{"url":"x"}]}`, "images[0].url", CodeUnknownParameter},
		{"image_url not a string", `{"images":[{"image_url":1}]}`, "images[0].image_url", CodeInvalidType},
		{"empty ref", `{"images":[{}]}`, "images[0]", CodeMissingParameter},
		{"both members", `{"images":[{"image_url":"x","file_id":"f"}]}`, "images[0]", CodeInvalidValue},
		{"file id", `{"images":[` + ok + `,{"file_id":"file-abc"}]}`, "images[1].file_id", CodeUnsupportedParameter},
		{"remote URL", `{"images":[{"image_url":"HTTPS://example.com/cat.png"}]}`, "images[0].image_url", CodeUnsupportedParameter},
		{"mask file id", `{"mask":{"file_id":"file-abc"}}`, "mask.file_id", CodeUnsupportedParameter},
		{"mask not base64", `{"mask":{"image_url":"data:image/png,abc"}}`, "mask.image_url", CodeInvalidValue},
		{"text data URL", `{"images":[{"image_url":"data:text/plain;base64,AAAA"}]}`, "images[0].image_url", CodeInvalidImageFormat},
		{"over 50 MB", `{"images":[{"image_url":"data:image/png;base64,` + big + `"}]}`, "images[0].image_url", CodeImageTooLarge},
		{"seventeen images", `{"images":[` + strings.Repeat(ok+",", 16) + ok + `]}`, "images", CodeInvalidValue},
		{"n as string", `{"n":"2"}`, "n", CodeInvalidType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeImageEditJSON([]byte(tt.body))
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Param != tt.wantParam || e.Code != tt.wantCode {
				t.Errorf("got %q %q (%s), want %q %q", e.Param, e.Code, e.Message, tt.wantParam, tt.wantCode)
			}
		})
	}
}

// FuzzDecodeImageEditJSON: any body either decodes or yields *Error, and
// what decodes holds only inline images within the limit, which every
// family validates or refuses with a param.
func FuzzDecodeImageEditJSON(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"p","images":[{"image_url":"data:image/png;base64,iVBORw0KGgo="}]}`,
		`{"prompt":"p","images":[{"image_url":"data:image/png;base64,AA"}],"mask":{"image_url":"data:image/png;base64,AA"},"quality":"standard"}`,
		`{"images":[{"file_id":"f"}]}`, `{"images":[{"image_url":"http://x"}]}`, `{"images":null,"mask":null}`,
		`{"images":[{}]}`, `{"images":[[]]}`, `{"mask":[]}`, `{"images":[{"image_url":null}]}`, `[]`, `{`,
	} {
		f.Add([]byte(seed))
	}
	families := []Family{FamilyDallE2, FamilyDallE3, FamilyGPTImage15, FamilyGPTImage2, FamilyLocal}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeImageEditJSON(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("decode error %v is not a *Error with a message", err)
			}
			return
		}
		if !req.JSON || len(req.Images) > MaxEditImages {
			t.Fatalf("decoded %d images, JSON %v", len(req.Images), req.JSON)
		}
		for _, u := range append(req.Images, ptrOr(req.Mask)...) {
			if len(u.Data) > MaxUploadBytes || !strings.HasPrefix(u.ContentType, "image/") {
				t.Fatalf("upload %q: %d bytes, type %q", u.Field, len(u.Data), u.ContentType)
			}
		}
		for _, fam := range families {
			var e *Error
			if verr := ValidateEdit(req, mustRules(t, fam)); verr != nil && (!errors.As(verr, &e) || e.Param == "") {
				t.Fatalf("validate error %v lacks a param", verr)
			}
		}
	})
}

func ptrOr(u *Upload) []Upload {
	if u == nil {
		return nil
	}
	return []Upload{*u}
}
