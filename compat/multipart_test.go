package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testBoundary = "sdgate-test-boundary"

// part is one multipart part for formBody: a file when filename is set or
// contentType is, else a text field.
type part struct {
	name, filename, contentType string
	data                        string
}

func file(name string, data string) part {
	return part{name: name, filename: name + ".png", contentType: "image/png", data: data}
}

func text(name, value string) part { return part{name: name, data: value} }

// formBody writes parts as multipart/form-data with testBoundary.
func formBody(t testing.TB, parts ...part) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(testBoundary); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disposition := fmt.Sprintf(`form-data; name=%q`, p.name)
		if p.filename != "" || p.contentType != "" {
			disposition += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", disposition)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(pw, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadImageEditRequest(t *testing.T) {
	tests := []struct {
		name  string
		parts []part
		want  ImageEditRequest
	}{
		{"go-openai: empty filename, octet-stream, n=0 and empty size", []part{
			{name: "image", contentType: "application/octet-stream", data: "IMG"},
			{name: "mask", contentType: "application/octet-stream", data: "MASK"},
			text("prompt", "a hat"), text("model", "dall-e-2"),
			text("n", "0"), text("size", ""), text("response_format", ""),
		}, ImageEditRequest{
			Images: []Upload{{Field: "image", ContentType: "application/octet-stream", Data: []byte("IMG")}},
			Mask:   &Upload{Field: "mask", ContentType: "application/octet-stream", Data: []byte("MASK")},
			Prompt: "a hat", Model: "dall-e-2",
		}},
		{"node: image[] parts keep their order", []part{
			file("image[]", "A"), file("image[]", "B"), text("prompt", "p"), text("n", "2"),
			text("output_compression", "0"), text("stream", "false"),
		}, ImageEditRequest{
			Images: []Upload{{Field: "image[]", Filename: "image[].png", ContentType: "image/png", Data: []byte("A")},
				{Field: "image[]", Filename: "image[].png", ContentType: "image/png", Data: []byte("B")}},
			Prompt: "p", N: ptr(2), OutputCompression: ptr(0), Stream: ptr(false),
		}},
		{"every field", []part{
			file("image", "I"), text("prompt", "p"), text("model", "gpt-image-1"), text("size", "1024x1536"),
			text("quality", "high"), text("response_format", "b64_json"), text("output_format", "webp"),
			text("output_compression", "50"), text("background", "opaque"), text("input_fidelity", "high"),
			text("user", "u"), text("partial_images", "1"), text("negative_prompt", "blur"),
			text("seed", "18446744073709551615"), text("steps", "30"), text("guidance_scale", "7.5"),
			text("scheduler", "euler"), text("strength", "0.6"),
		}, ImageEditRequest{
			Images: []Upload{{Field: "image", Filename: "image.png", ContentType: "image/png", Data: []byte("I")}},
			Prompt: "p", Model: "gpt-image-1", Size: "1024x1536", Quality: "high", ResponseFormat: "b64_json",
			OutputFormat: "webp", OutputCompression: ptr(50), Background: "opaque", InputFidelity: "high",
			User: "u", PartialImages: ptr(1), NegativePrompt: "blur", Seed: ptr(uint64(18446744073709551615)),
			Steps: ptr(30), GuidanceScale: ptr(7.5), Scheduler: "euler", Strength: ptr(0.6),
		}},
		{"a text field sent as a file is still text", []part{
			{name: "prompt", filename: "p.txt", contentType: "text/plain", data: "from a file"},
		}, ImageEditRequest{Prompt: "from a file"}},
		{"no parts at all", nil, ImageEditRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadImageEditRequest(bytes.NewReader(formBody(t, tt.parts...)), testBoundary)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadImageVariationRequest(t *testing.T) {
	body := formBody(t, part{name: "image", contentType: "application/octet-stream", data: "IMG"},
		text("n", "0"), text("size", "256x256"), text("response_format", ""), text("prompt", "more blue"),
		text("strength", "0.5"), text("seed", "7"))
	got, err := ReadImageVariationRequest(bytes.NewReader(body), testBoundary)
	if err != nil {
		t.Fatal(err)
	}
	want := ImageVariationRequest{
		Images: []Upload{{Field: "image", ContentType: "application/octet-stream", Data: []byte("IMG")}},
		Size:   "256x256", Prompt: "more blue", Strength: ptr(0.5), Seed: ptr(uint64(7)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	body = formBody(t, file("image", "I"), file("mask", "M"))
	if _, err := ReadImageVariationRequest(bytes.NewReader(body), testBoundary); paramOfErr(err) != "mask" {
		t.Errorf("a mask on a variation: %v, want an unknown-parameter error for mask", err)
	}
}

func paramOfErr(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Param
	}
	return "<not an *Error>"
}

func TestReadImageEditRequestRejects(t *testing.T) {
	big := strings.Repeat("x", MaxUploadBytes+1)
	tests := []struct {
		name      string
		body      []byte
		boundary  string
		wantParam string
		wantCode  string
	}{
		{"unknown field", formBody(t, text("prompt", "p"), text("style", "vivid")), testBoundary, "style", CodeUnknownParameter},
		{"repeated text field", formBody(t, text("prompt", "p"), text("prompt", "q")), testBoundary, "prompt", CodeInvalidValue},
		{"two masks", formBody(t, file("mask", "a"), file("mask", "b")), testBoundary, "mask", CodeInvalidValue},
		{"n not an integer", formBody(t, text("n", "two")), testBoundary, "n", CodeInvalidType},
		{"n too large for int", formBody(t, text("n", "99999999999999999999")), testBoundary, "n", CodeIntegerAboveMax},
		{"negative seed", formBody(t, text("seed", "-1")), testBoundary, "seed", CodeIntegerBelowMin},
		{"seed not a number", formBody(t, text("seed", "1e3")), testBoundary, "seed", CodeInvalidType},
		{"strength NaN", formBody(t, text("strength", "NaN")), testBoundary, "strength", CodeInvalidValue},
		{"strength text", formBody(t, text("strength", "half")), testBoundary, "strength", CodeInvalidType},
		{"guidance infinite", formBody(t, text("guidance_scale", "1e999")), testBoundary, "guidance_scale", CodeInvalidValue},
		{"stream not a boolean", formBody(t, text("stream", "yes")), testBoundary, "stream", CodeInvalidType},
		{"image over 25 MB", formBody(t, file("image", big)), testBoundary, "image", CodeImageTooLarge},
		{"image[] over 25 MB", formBody(t, file("image[]", big)), testBoundary, "image", CodeImageTooLarge},
		{"text field over its limit", formBody(t, text("prompt", strings.Repeat("p", MaxValueBytes+1))), testBoundary, "prompt", CodeStringAboveMaxLength},
		{"too many parts", formBody(t, manyParts(MaxFormParts+1)...), testBoundary, "", ""},
		{"no boundary", formBody(t, text("prompt", "p")), "", "", ""},
		{"wrong boundary", formBody(t, text("prompt", "p")), "other", "", ""},
		{"truncated", formBody(t, text("prompt", "p"))[:40], testBoundary, "", ""},
		{"part without a name", []byte("--" + testBoundary + "\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + testBoundary + "--\r\n"), testBoundary, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadImageEditRequest(bytes.NewReader(tt.body), tt.boundary)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Param != tt.wantParam || e.Code != tt.wantCode || e.Message == "" {
				t.Errorf("got param %q code %q (%s), want %q %q", e.Param, e.Code, e.Message, tt.wantParam, tt.wantCode)
			}
		})
	}
}

func manyParts(n int) []part {
	parts := make([]part, n)
	for i := range parts {
		parts[i] = file("image[]", "x")
	}
	return parts
}

// errTransport stands for the server's body cap or a dropped connection.
var errTransport = errors.New("transport broke")

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// A failure of the reader below is not the client's syntax: it comes back
// wrapped (so the server can answer 413 for its size cap), not as *Error.
func TestReadImageEditRequestKeepsReaderErrors(t *testing.T) {
	body := formBody(t, text("prompt", "p"), file("image", strings.Repeat("x", 1000)))
	for _, cut := range []int{10, 60, 200, len(body) - 5} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			_, err := ReadImageEditRequest(&failingReader{data: body[:cut], err: errTransport}, testBoundary)
			if !errors.Is(err, errTransport) {
				t.Fatalf("got %v, want the reader's error", err)
			}
			var e *Error
			if errors.As(err, &e) {
				t.Errorf("reader failure reported as a client error: %v", e)
			}
		})
	}
}

// FuzzReadImageEditRequest: any body either reads or yields *Error (the
// reader below never fails here), and what reads holds only known fields
// within their limits.
func FuzzReadImageEditRequest(f *testing.F) {
	f.Add(formBody(f, file("image", "I"), text("prompt", "p"), text("n", "0"), text("size", "")))
	f.Add(formBody(f, file("image[]", "A"), file("image[]", "B"), file("mask", "M"), text("seed", "3")))
	f.Add(formBody(f, text("strength", "0.5"), text("guidance_scale", "-1"), text("stream", "true")))
	f.Add([]byte("--" + testBoundary + "\r\n\r\n--" + testBoundary + "--"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		edit, err := ReadImageEditRequest(bytes.NewReader(body), testBoundary)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %v is not a *Error with a message", err)
			}
		} else {
			for _, u := range edit.Images {
				if (u.Field != "image" && u.Field != "image[]") || len(u.Data) > MaxUploadBytes {
					t.Fatalf("bad image upload %q (%d bytes)", u.Field, len(u.Data))
				}
			}
			if edit.Mask != nil && edit.Mask.Field != "mask" {
				t.Fatalf("mask from field %q", edit.Mask.Field)
			}
			for _, fam := range []Family{FamilyDallE2, FamilyDallE3, FamilyGPTImage, FamilyLocal} {
				var e *Error
				if verr := ValidateEdit(edit, mustRules(t, fam)); verr != nil && (!errors.As(verr, &e) || e.Param == "") {
					t.Fatalf("validate error %v lacks a param", verr)
				}
			}
		}
		vari, err := ReadImageVariationRequest(bytes.NewReader(body), testBoundary)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("variation error %v is not a *Error with a message", err)
			}
			return
		}
		for _, fam := range []Family{FamilyDallE2, FamilyLocal} {
			var e *Error
			if verr := ValidateVariation(vari, mustRules(t, fam)); verr != nil && (!errors.As(verr, &e) || e.Param == "") {
				t.Fatalf("validate error %v lacks a param", verr)
			}
		}
	})
}
