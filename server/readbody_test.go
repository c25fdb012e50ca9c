package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody: the declared-length read gives the same bytes as
// io.ReadAll, and a body shorter than declared is an error, not a
// truncated request.
func TestReadBody(t *testing.T) {
	const body = `{"prompt":"a lighthouse"}`
	for _, tc := range []struct {
		name     string
		declared int64
		reader   io.Reader
		want     string
		wantErr  bool
	}{
		{"exact", int64(len(body)), strings.NewReader(body), body, false},
		{"one byte at a time", int64(len(body)), iotest.OneByteReader(strings.NewReader(body)), body, false},
		{"unknown length", -1, strings.NewReader(body), body, false},
		{"more than declared", 5, strings.NewReader(body), body, false},
		{"shorter than declared", 100, strings.NewReader(body), "", true},
		{"failing reader", int64(len(body)), iotest.ErrReader(errors.New("reset")), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{ContentLength: tc.declared, Body: io.NopCloser(tc.reader)}
			got, err := readBody(r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsJSONMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "Application/JSON": true,
		"application/json;charset=UTF-8": true, "text/plain": false, "": false, "application/jsonx": false,
		"multipart/form-data; boundary=x": false,
	} {
		if got := isJSONMediaType(ct); got != want {
			t.Errorf("isJSONMediaType(%q) = %v, want %v", ct, got, want)
		}
	}
}
