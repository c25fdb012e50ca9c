package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects JSON log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the records whose msg is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var logs logBuffer
	gen := newFakeGenerator()
	ts := startServer(t, gen, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	do(t, ts.Client(), "GET", ts.URL+"/v1/models", "", "", "X-Request-Id", "trace-1")
	gen.fail(errSecret)
	postJSON(t, ts.Client(), ts.URL, `{"prompt":"x"}`, "X-Request-Id", "trace-2")

	recs := logs.lines(t, "request")
	if len(recs) != 2 {
		t.Fatalf("%d access log lines, want 2", len(recs))
	}
	ok := recs[0]
	if ok["request_id"] != "trace-1" || ok["status"] != float64(200) || ok["route"] != "/v1/models" ||
		ok["method"] != "GET" || ok["level"] != "INFO" {
		t.Errorf("access log %v", ok)
	}
	failed := recs[1]
	if failed["request_id"] != "trace-2" || failed["status"] != float64(500) || failed["level"] != "ERROR" ||
		!strings.Contains(failed["err"].(string), "secret detail") {
		t.Errorf("access log of a 500: %v", failed)
	}
	if errs := logs.lines(t, "request failed"); len(errs) != 1 || errs[0]["request_id"] != "trace-2" {
		t.Errorf("error log %v", errs)
	}
}

func TestClientGoneIsLoggedAs499(t *testing.T) {
	var logs logBuffer
	ts, _, q := queuedServer(t, 2, time.Hour, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	cancel, done := sendCancellable(t, ts)
	waitFor(t, "the job to run", q.Busy)
	cancel()
	<-done
	waitFor(t, "the access log line", func() bool { return len(logs.lines(t, "request")) == 1 })
	rec := logs.lines(t, "request")[0]
	if rec["status"] != float64(StatusClientClosedRequest) || rec["level"] != "INFO" {
		t.Errorf("access log %v", rec)
	}
	if errs := logs.lines(t, "request failed"); len(errs) != 0 {
		t.Errorf("a client leaving was logged as a failure: %v", errs)
	}
}
