package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/dispatch"
)

// busyWorker waits for a job's first progress message, then for the
// worker whose advert says it is busy: the one running the job.
func busyWorker(t *testing.T, c *processCluster, progress <-chan *nats.Msg) *child {
	t.Helper()
	select {
	case <-progress:
	case <-time.After(30 * time.Second):
		t.Fatal("no worker reported progress")
	}
	// Only adverts written after the job started count: an older one may
	// still say busy from the job before.
	started := time.Now()
	nc, err := nats.Connect(c.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, dispatch.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, w := range c.workers {
			if e, err := kv.Get(ctx, w.name); err == nil && e.Created().After(started) {
				var ad struct {
					Busy bool `json:"busy"`
				}
				if json.Unmarshal(e.Value(), &ad) == nil && ad.Busy {
					return w
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no worker advertised itself busy")
	return nil
}

// SIGKILL the worker process running a job: the job is redelivered to the
// other worker, the client gets 200 with the bytes an undisturbed run of
// the same seed gave, and PostgreSQL holds exactly one usage record for it.
func TestClusterProcessWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	c := startProcessCluster(t, clusterSpec{})
	// Long enough (4 images x 150 steps) that the kill lands mid-job.
	body := `{"model":"tiny","prompt":"a lighthouse","size":"64x64","n":4,"seed":77,"steps":150,"response_format":"b64_json"}`
	ctx := context.Background()
	resp, raw, want, err := c.generate(ctx, c.addrs[0], body)
	if err != nil || want == nil {
		t.Fatalf("reference run: %v %.300s", err, raw)
	}
	refReq := resp.Header.Get("X-Request-Id")

	nc, err := nats.Connect(c.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	progress := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe("sdgate.progress.>", progress)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()

	type outcome struct {
		resp     *http.Response
		raw, img []byte
		err      error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, raw, img, err := c.generate(ctx, c.addrs[1], body)
		done <- outcome{resp, raw, img, err}
	}()
	victim := busyWorker(t, c, progress)
	victim.kill(t)
	killedAt := time.Now()

	var o outcome
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no answer after the worker was killed")
	}
	if o.err != nil || o.resp.StatusCode != http.StatusOK || o.img == nil {
		t.Fatalf("after the kill: %v %v %.300s", o.err, o.resp, o.raw)
	}
	t.Logf("%s killed; answered %s later", victim.name, time.Since(killedAt))
	if !bytes.Equal(o.img, want) {
		t.Error("the redelivered job's image differs from the undisturbed run's")
	}
	var rescuer *child
	for _, w := range c.workers {
		if w != victim {
			rescuer = w
		}
	}
	if !strings.Contains(rescuer.log(), "redelivered job") {
		t.Errorf("%s did not log a redelivery:\n%s", rescuer.name, rescuer.log())
	}
	id := o.resp.Header.Get("X-Request-Id")
	if id == "" || id == refReq {
		t.Fatalf("request ids %q and %q", refReq, id)
	}
	if n := c.usageRows(t, id)[id]; n != 1 {
		t.Errorf("%d usage records for request %s, want exactly 1", n, id)
	}
}

// SIGKILL one gateway process while clients load both: the other keeps
// serving, and every request a client saw answered 200 has its usage
// record in PostgreSQL.
func TestClusterProcessGatewayKilledUnderLoad(t *testing.T) {
	t.Parallel()
	c := startProcessCluster(t, clusterSpec{})
	var (
		mu       sync.Mutex
		answered []string // request ids answered 200 with an image
		perGW    [2]int
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for client := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := client % 2
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":"tiny","prompt":"load %d","size":"64x64","seed":%d,"steps":2,"response_format":"b64_json"}`, client, 1000*client+i)
				resp, _, img, err := c.generate(context.Background(), c.addrs[gw], body)
				if err != nil {
					gw = 1 // gateway 1 is gone: fail over, as a client behind a load balancer would
					continue
				}
				if resp.StatusCode == http.StatusOK && img != nil {
					mu.Lock()
					answered = append(answered, resp.Header.Get("X-Request-Id"))
					perGW[gw]++
					mu.Unlock()
				}
			}
		}()
	}
	counts := func() (int, [2]int) {
		mu.Lock()
		defer mu.Unlock()
		return len(answered), perGW
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("answers from both gateways", func() bool { _, g := counts(); return g[0] >= 5 && g[1] >= 5 })
	c.gateways[0].kill(t)
	_, atKill := counts()
	waitFor("gateway 2 to keep serving", func() bool { _, g := counts(); return g[1] >= atKill[1]+10 })
	close(stop)
	wg.Wait()

	n, g := counts()
	recorded := c.usageRows(t, answered...)
	for _, id := range answered {
		if recorded[id] != 1 {
			t.Errorf("request %s was answered 200 but has %d usage records", id, recorded[id])
		}
	}
	t.Logf("%d requests answered 200 (gateway 1 %d, gateway 2 %d; %d of gateway 2's after the kill), all metered",
		n, g[0], g[1], g[1]-atKill[1])
}
