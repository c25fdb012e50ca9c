package reliability

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/server"
)

// pngBomb is a valid w x h RGBA PNG of zeros at 8 or 16 bits per sample:
// a few hundred kilobytes that decode to w*h*4*(depth/8) bytes.
func pngBomb(w, h, depth int) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		body := append([]byte(typ), data...)
		out.Write(body)
		binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(body))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	chunk("IHDR", append(ihdr, byte(depth), 6, 0, 0, 0))
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+w*4*depth/8) // filter byte 0, then zeros
	for range h {
		zw.Write(row)
	}
	zw.Close()
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

var bomb16 = sync.OnceValue(func() []byte { return pngBomb(4096, 4096, 16) })

// refusedBomb is what the probes that must never decode send: under
// -chaos the real 4096x4096x16-bit PNG; otherwise its header and as many
// bytes again of padding (building the real one costs a minute under
// -race, and a refusal reads only the header either way).
func refusedBomb() []byte {
	if *chaos {
		return bomb16()
	}
	return append(pngHeaderOnly(4096, 4096, 16), make([]byte, 127<<10)...)
}

type part struct {
	name string
	data []byte
	file bool
}

func file(name string, data []byte) part { return part{name, data, true} }
func text(name, v string) part           { return part{name, []byte(v), false} }

// form is a multipart body in the order given (image parts first is the
// order that used to make the server decode before it looked at the key).
func form(parts ...part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		d := fmt.Sprintf("form-data; name=%q", p.name)
		if p.file {
			d += `; filename="x.png"`
			h.Set("Content-Type", "application/octet-stream")
		}
		h.Set("Content-Disposition", d)
		pw, _ := w.CreatePart(h)
		pw.Write(p.data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

func (s *stack) edit(t testing.TB, key string, parts ...part) answer {
	body, ct := form(parts...)
	return s.do(t, http.MethodPost, "/v1/images/edits", key, ct, body)
}

// Finding 1: a key allowed no model is refused before the upload decodes.
func TestProbeEditBombNoAccess(t *testing.T) {
	s := newStack(t, stackOptions{})
	key := s.key(t, auth.KeySpec{Name: "none", Models: []string{"nothing"}})
	img := refusedBomb()
	n := 8
	answers := make([]answer, n)
	grew := peakRSS(func() {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				answers[i] = s.edit(t, key, file("image", img), text("prompt", "x"), text("model", "dall-e-2"))
			})
		}
		wg.Wait()
	})
	var slowest time.Duration
	ok := true
	for _, a := range answers {
		slowest = max(slowest, a.took)
		ok = ok && a.status == 404 && a.code() == "model_not_found" && !strings.Contains(string(a.body), "alpha")
	}
	check(t, fmt.Sprintf("%d edits, %d KB PNG declaring 4096x4096x16-bit, key with no model", n, len(img)>>10),
		"404 each <1s, RSS +<100 MB, no alias target named",
		fmt.Sprintf("%s, slowest %s, RSS +%s", answers[0], slowest.Round(time.Millisecond), mb(grew)),
		ok && slowest < time.Second && grew < 100<<20)
}

// Finding 1: an rpm-limited key gets its 429 before any decode.
func TestProbeEditBombRateLimited(t *testing.T) {
	s := newStack(t, stackOptions{})
	key := s.key(t, auth.KeySpec{Name: "rpm", Limits: auth.Limits{RequestsPerMinute: 1}})
	if a := s.json(t, "/v1/images/generations", key, `{"model":"alpha","prompt":"x"}`); a.status != 200 {
		t.Fatalf("first request: %s %s", a, a.body)
	}
	a := s.edit(t, key, file("image", refusedBomb()), text("prompt", "x"), text("model", "alpha"))
	check(t, "edit of the 4096x4096x16-bit PNG, rpm spent", "429 rate_limit_exceeded <200ms", a.String(),
		a.status == 429 && a.code() == "rate_limit_exceeded" && a.took < 200*time.Millisecond)
}

// Finding 1: n images of an "auto" edit stay within the request's pixel
// bound, whatever the input's size.
func TestProbeEditManyOutputsBounded(t *testing.T) {
	s := newStack(t, stackOptions{})
	img, side := pngBomb(512, 512, 8), "512x512x8-bit"
	if *chaos {
		img, side = bomb16(), "4096x4096x16-bit"
	}
	var a answer
	grew := peakRSS(func() {
		a = s.edit(t, s.admin, file("image", img), text("prompt", "x"), text("model", "alpha"), text("n", "10"))
	})
	var delivered int
	if a.status == 200 {
		delivered = len(a.body)
	}
	const most = 40 << 20 // 10 x 1.5 MP of flat PNG is far less; 136 MB was the finding
	check(t, fmt.Sprintf("edit n=10 size=auto of a %d KB %s PNG", len(img)>>10, side),
		"200, body <40 MB, RSS +<800 MB",
		fmt.Sprintf("%s, body %s, RSS +%s", a, mb(int64(delivered)), mb(grew)),
		a.status == 200 && delivered < most && grew < 800<<20)
	if a.status == 200 {
		i := bytes.Index(a.body, []byte(`"b64_json":"`))
		if i >= 0 {
			// The first image's size, from its base64 PNG header.
			b64 := a.body[i+12:]
			b64 = b64[:bytes.IndexByte(b64, '"')]
			if cfg, err := png.DecodeConfig(b64Reader(b64)); err == nil {
				px := cfg.Width * cfg.Height
				check(t, "delivered size of that edit", "10 x W x H <= 10 x 1536x1024",
					fmt.Sprintf("10 x %dx%d", cfg.Width, cfg.Height), 10*px <= 10*1536*1024)
			}
		}
	}
}

// Bad inputs that already passed stay passing: each answered 4xx fast.
func TestProbeBadInputs(t *testing.T) {
	// The 50-73 MB bodies below must arrive whole, even on a loaded box:
	// stalled bodies are conns_test's probes, not these.
	s := newStack(t, stackOptions{bodyTimeout: 15 * time.Second})
	k := s.admin
	small := pngBomb(64, 64, 8)
	jpegBomb := []byte("\xff\xd8\xff\xc0\x00\x11\x08\xff\xdc\xff\xdc\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9")
	big := bytes.Repeat([]byte{0}, 50<<20+1)              // one byte over upstream's 50 MiB per image
	huge := bytes.Repeat([]byte{0}, server.UploadLimit+1) // over the whole body's cap
	tests := []struct {
		name   string
		run    func() answer
		status int
	}{
		{"bad JSON", func() answer { return s.json(t, "/v1/images/generations", k, `{"prompt":`) }, 400},
		{"JSON array", func() answer { return s.json(t, "/v1/images/generations", k, `[1,2]`) }, 400},
		{"unknown size", func() answer { return s.json(t, "/v1/images/generations", k, `{"prompt":"x","size":"9x9x9"}`) }, 400},
		{"multipart without boundary", func() answer {
			return s.do(t, "POST", "/v1/images/edits", k, "multipart/form-data", strings.NewReader("x"))
		}, 400},
		{"truncated multipart", func() answer {
			body, ct := form(file("image", small), text("prompt", "x"))
			return s.do(t, "POST", "/v1/images/edits", k, ct, bytes.NewReader(body.Bytes()[:body.Len()/2]))
		}, 400},
		{"image over 50 MiB", func() answer {
			body, ct := form(file("image", big), text("prompt", "x"))
			return s.do(t, "POST", "/v1/images/edits", k, ct, body)
		}, 400},
		{"body over the upload limit", func() answer {
			body, ct := form(file("image", huge), text("prompt", "x"))
			return s.do(t, "POST", "/v1/images/edits", k, ct, body)
		}, 413},
		{"PNG declaring 4097x4097", func() answer {
			return s.edit(t, k, file("image", pngHeaderOnly(4097, 4097, 8)), text("prompt", "x"), text("model", "alpha"))
		}, 400},
		{"JPEG declaring 65500x65500", func() answer {
			return s.edit(t, k, file("image", jpegBomb), text("prompt", "x"), text("model", "alpha"))
		}, 400},
		{"truncated PNG", func() answer {
			return s.edit(t, k, file("image", small[:len(small)-20]), text("prompt", "x"), text("model", "alpha"))
		}, 400},
		{"mask of another size", func() answer {
			return s.edit(t, k, file("image", small), file("mask", pngBomb(32, 32, 8)), text("prompt", "x"), text("model", "alpha"))
		}, 400},
		{"model name with path traversal", func() answer {
			return s.json(t, "/v1/images/generations", k, `{"model":"../../etc/passwd","prompt":"x"}`)
		}, 404},
		{"file URL with path traversal", func() answer {
			return s.do(t, "GET", "/v1/files/images/..%2f..%2fetc%2fpasswd", "", "", nil)
		}, 404},
		{"gzip body", func() answer {
			return s.json(t, "/v1/images/generations", k, `{"prompt":"x"}`, "Content-Encoding", "gzip")
		}, 415},
	}
	slow := map[string]bool{"image over 50 MiB": true, "body over the upload limit": true}
	tally("bad inputs", len(tests)+2) // and the bombs of the two probes above
	for _, tt := range tests {
		within := 2 * time.Second
		if slow[tt.name] { // 50-73 MB take longer to send and parse under -race
			within = 10 * time.Second
		}
		a := tt.run()
		check(t, "bad input: "+tt.name, fmt.Sprintf("%d <%v", tt.status, within), a.String(), a.status == tt.status && a.took < within)
	}
	if n := s.runs.Load(); n != 0 {
		t.Errorf("bad inputs reached the pipeline %d times", n)
	}
}

// pngHeaderOnly is a PNG signature and IHDR declaring w x h RGBA at depth
// bits per sample: no pixels.
func pngHeaderOnly(w, h, depth int) []byte {
	full := pngBomb(1, 1, 8)
	out := append([]byte(nil), full[:33]...)
	binary.BigEndian.PutUint32(out[16:], uint32(w))
	binary.BigEndian.PutUint32(out[20:], uint32(h))
	out[24] = byte(depth)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}
