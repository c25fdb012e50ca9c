package browsertest

import (
	"github.com/sdgate/sdgate/internal/authtest"

	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/server"
)

// env is one real server (the shared registry behind a fresh key store)
// with an admin key and an ordinary key named "alice".
type env struct {
	url, host   string
	admin, user string
	gate        *auth.Gate
}

func newEnv(t *testing.T) *env {
	t.Helper()
	browser(t) // skip before any set-up when there is no browser
	reg := registry(t)
	gate, _ := authtest.Gate(t, auth.Options{})
	admin, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "admin", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	user, _, err := gate.CreateKey(context.Background(), auth.KeySpec{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(reg, server.Options{Gate: gate, Admin: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	u, _ := url.Parse(ts.URL)
	return &env{url: ts.URL, host: u.Host, admin: admin, user: user, gate: gate}
}

// api calls the server directly (not through the page) and returns the
// status and the decoded JSON body.
func (e *env) api(t *testing.T, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// errMessage is the message of an OpenAI error envelope.
func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// tab is one browser tab on the server. It records what the page must not
// do: console errors, uncaught exceptions, CSP violations, and requests to
// any host but the server's own; unless told otherwise, the test fails on
// any of them when it ends.
type tab struct {
	t    *testing.T
	ctx  context.Context
	host string

	mu        sync.Mutex
	problems  []string // console errors, exceptions, CSP violations
	httpFails []string // "Failed to load resource" lines: expected in error tests
	foreign   []string // request URLs off the server's host
	urls      []string // every request URL
	keys      []string // keys typed into the page: never in a URL
	requests  int
	// expectHTTPFailures allows failed API answers (the error tests).
	expectHTTPFailures bool
	// skipChecks: the test examines complaints itself.
	skipChecks bool
}

// cspReporter runs before the page's own scripts (DevTools injects it, so
// the page's CSP does not apply to it) and turns every CSP violation into a
// console error the tab records.
const cspReporter = `document.addEventListener("securitypolicyviolation", (e) =>
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline")));`

func (e *env) open(t *testing.T, path string) *tab {
	t.Helper()
	tb := &tab{t: t, host: e.host}
	ctx, closeTab := chromedp.NewContext(browser(t), chromedp.WithListener(tb.onEvent))
	if err := chromedp.Do(ctx); err != nil { // opens the tab without a deadline
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancel(); closeTab() })
	tb.ctx = ctx
	tb.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter})
		return err
	}), chromedp.Navigate(e.url+path))
	t.Cleanup(tb.checkClean) // runs before the tab closes
	return tb
}

func (tb *tab) onEvent(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		tb.problems = append(tb.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			tb.problems = append(tb.problems, "console.error: "+strings.Join(parts, " "))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		line := fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		if ev.Entry.Source == log.EntrySourceNetwork {
			tb.httpFails = append(tb.httpFails, line)
		} else {
			tb.problems = append(tb.problems, line)
		}
	case *network.EventRequestWillBeSent:
		tb.requests++
		tb.urls = append(tb.urls, ev.Request.URL)
		u, err := url.Parse(ev.Request.URL)
		if err != nil || (u.Scheme != "data" && u.Scheme != "blob" && u.Host != tb.host) {
			tb.foreign = append(tb.foreign, ev.Request.URL)
		}
	}
}

func (tb *tab) checkClean() {
	if tb.skipChecks {
		return
	}
	for _, c := range tb.complaints() {
		tb.t.Error(c)
	}
}

// complaints lists what the page did that it must not.
func (tb *tab) complaints() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, p := range tb.problems {
		out = append(out, "page problem: "+p)
	}
	for _, u := range tb.foreign {
		out = append(out, fmt.Sprintf("page requested %s, not on the server's host %s", u, tb.host))
	}
	if !tb.expectHTTPFailures {
		for _, f := range tb.httpFails {
			out = append(out, "failed request: "+f)
		}
	}
	for _, u := range tb.urls {
		for _, k := range tb.keys {
			if strings.Contains(u, k) {
				out = append(out, "the key went into a URL: "+u)
			}
		}
	}
	if tb.requests == 0 {
		out = append(out, "no requests recorded: the network listener is broken")
	}
	return out
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// get runs one action that answers a value.
func get[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
	return v
}

// setKey types key into the page's key field and leaves it, as a person
// pasting a key does; the page stores it and reloads its data.
func (tb *tab) setKey(key string) {
	tb.t.Helper()
	tb.mu.Lock()
	tb.keys = append(tb.keys, key)
	tb.mu.Unlock()
	tb.do(chromedp.SendKeys(chromedp.ID("key"), key+kb.Tab))
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return get(tb, chromedp.TextContent(chromedp.CSS(sel)))
}

// clickAndWait empties #status, clicks the first element the CSS selector
// (or bare id) names and waits for the page's answer.
func (tb *tab) clickAndWait(sel string) (string, bool) {
	tb.t.Helper()
	tb.do(chromedp.Evaluate[chromedp.Void](`{ const s = document.getElementById("status"); s.textContent = ""; s.className = ""; }`),
		chromedp.Click(chromedp.CSS(sel)))
	return tb.waitStatus()
}

// waitStatus waits until #status shows a message that is not a busy one
// and returns its text and whether the page marks it as an error.
func (tb *tab) waitStatus() (string, bool) {
	tb.t.Helper()
	type status struct {
		Text string `json:"text"`
		Err  bool   `json:"err"`
	}
	st := get(tb, chromedp.Poll[status](`(() => { const s = document.getElementById("status");
	  return s.textContent && s.className !== "busy" ? {text: s.textContent, err: s.className === "err"} : null; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond)))
	return st.Text, st.Err
}

// dataURLImage decodes a data:image/png;base64 URL.
func dataURLImage(t *testing.T, src string) image.Image {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(src, prefix) {
		t.Fatalf("image src %.40q is not a PNG data URL", src)
	}
	raw, err := base64.StdEncoding.DecodeString(src[len(prefix):])
	if err != nil {
		t.Fatalf("image src: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("image src is not a PNG: %v", err)
	}
	return img
}
