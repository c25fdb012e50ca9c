package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/servetest"
)

// SIGKILL of a real `sdgate serve` mid-burst: after a restart, every
// request a client saw answered 200 has its usage row (the record is
// durable before the response is written).
func TestProbeSIGKILLMidBurst(t *testing.T) {
	r := newRealServe(t)
	r.start(t)
	workers, want := scale(6, 16), scale(20, 100)
	burst := servetest.StartBurst(r.addr, r.key, workers, func(w, i int) string {
		return r.generation(fmt.Sprintf("kill %d", w), 1000*w+i, "256x256", 1)
	})
	burst.WaitSucceeded(want, 60*time.Second)
	_, _, exited := r.signal(syscall.SIGKILL, 10*time.Second)
	ok, byCode := burst.Stop()
	answered := 0
	for code, n := range byCode {
		if code > 0 {
			answered += n
		}
	}
	tally("burst requests", answered)
	tally("faults", 1)

	r.start(t) // the restart recovers the WAL
	metered, err := servetest.MeteredOK(r.data)
	if err != nil {
		t.Fatal(err)
	}
	lost := servetest.Unmetered(ok, metered)
	tally("records lost", len(lost))
	usage, _ := r.get(t, "/v1/usage")
	check(t, fmt.Sprintf("SIGKILL of sdgate serve mid-burst (%d clients), then restart", workers),
		"every client 200 has its usage row; usage served after restart",
		fmt.Sprintf("%d client 200s, %d metered, %d lost; killed %v; /v1/usage %d", len(ok), len(metered), len(lost), exited, usage),
		exited && len(ok) > 0 && len(lost) == 0 && usage == http.StatusOK)
}

// SIGTERM of a real `sdgate serve` with generations in flight: they all
// finish 200 and are metered, new connections are refused at once, and
// the process exits 0 within its drain timeout.
func TestProbeSIGTERMDrains(t *testing.T) {
	const drain = 30 * time.Second // serve's default
	r := newRealServe(t, "--max-batch", "1")
	r.start(t)
	n := scale(6, 16)
	answers := make([]servetest.Answer, n)
	wrote := make([]chan struct{}, n)
	done := make(chan int, n)
	client := &http.Client{Timeout: time.Minute}
	for i := range n {
		wrote[i] = make(chan struct{})
		go func() {
			answers[i] = servetest.Generate(context.Background(), client, r.addr, r.key,
				r.generation("drain", i, "256x256", 40), wrote[i])
			done <- i
		}()
	}
	for i := range n {
		select {
		case <-wrote[i]:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d was not sent within 10s", i)
		}
	}
	// Written is not yet accepted: wait until the server holds them all,
	// one on the GPU (--max-batch 1) and the rest in its queue.
	deadline := time.Now().Add(10 * time.Second)
	for r.queueDepth(t) < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d within 10s, want %d", r.queueDepth(t), n-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sent := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	refusal := make(chan time.Duration, 1)
	go func() {
		// The listener closes before the drain: look from the signal on.
		took, ok := refusedWithin(ctx, r.addr, 5*time.Second)
		if !ok {
			took = -1
		}
		refusal <- took
	}()
	took, exitErr, exited := r.signal(syscall.SIGTERM, drain+5*time.Second)
	cancel()
	refusedAfter := <-refusal
	for range n {
		<-done
	}
	tally("faults", 1)
	tally("burst requests", n)

	okCount, inFlight, last := 0, 0, time.Duration(0)
	var ok []string
	byCode := map[int]int{}
	for _, a := range answers {
		byCode[a.Status]++
		if a.Err != nil {
			t.Logf("request %s: %v", a.RequestID, a.Err)
		}
		if a.OK() {
			okCount++
			ok = append(ok, a.RequestID)
		}
		if d := a.Done.Sub(sent); d > 0 {
			inFlight++
			last = max(last, d)
		}
	}
	code := exitCode(exitErr)
	check(t, fmt.Sprintf("SIGTERM of sdgate serve with %d generations sent (drain %s)", n, drain),
		fmt.Sprintf("all %d 200, exit 0 <%s", n, drain),
		fmt.Sprintf("%v (%d in flight at the signal, the last done %s after), exit %d in %s", byCode, inFlight,
			last.Round(time.Millisecond), code, took.Round(time.Millisecond)),
		exited && okCount == n && code == 0 && took < drain)
	check(t, "a new connection during that drain", "refused before the last in-flight request is answered",
		fmt.Sprintf("refused %s after the signal", refusedAfter.Round(time.Millisecond)),
		refusedAfter >= 0 && inFlight > 0 && refusedAfter < last)

	metered, err := servetest.MeteredOK(r.data)
	if err != nil {
		t.Fatal(err)
	}
	lost := servetest.Unmetered(ok, metered)
	sort.Strings(lost)
	tally("records lost", len(lost))
	check(t, "usage rows after that drain", "one per 200, 0 lost",
		fmt.Sprintf("%d of %d 200s metered", len(ok)-len(lost), len(ok)), len(lost) == 0 && len(ok) > 0)
	if t.Failed() {
		t.Logf("server stderr:\n%s", r.stderrText())
	}
}

// queueDepth reads sdgate_queue_depth from /metrics (-1 when unread).
func (r *realServe) queueDepth(t *testing.T) int {
	t.Helper()
	_, body := r.get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "sdgate_queue_depth "); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// get answers GET path with the probe's key: status (-1: no answer), body.
func (r *realServe) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+r.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body
}

// exitCode is a process's exit status from cmd.Wait's error (-1: killed
// by a signal, or not an exit error).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
