package auth

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// envDurabilityChild selects the child role of TestUsageSurvivesSIGKILL: it
// names the database the child writes.
const envDurabilityChild = "SDGATE_AUTH_TEST_CHILD_DB"

// TestUsageVisibleWithoutClose: every acknowledged record is committed, not
// buffered: another connection sees all of them although the writer was
// never closed or flushed.
func TestUsageVisibleWithoutClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 50, 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				rec := UsageRecord{KeyID: "k", RequestID: fmt.Sprintf("r-%d-%d", i, j), At: testStart, Images: 1, Status: 200}
				if err := w.RecordUsage(ctx, rec); err != nil {
					t.Errorf("RecordUsage: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	r, err := OpenDataDir(ctx, dir) // a second handle: what a restart would read
	if err != nil {
		t.Fatal(err)
	}
	_, total, err := r.UsageTotals(ctx, "k", dayOf(testStart))
	if err != nil {
		t.Fatal(err)
	}
	if total != writers*each {
		t.Errorf("second handle sees %d records, want %d", total, writers*each)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}

// TestUsageSurvivesSIGKILL runs this test binary again as a child that
// writes records from many goroutines and prints "ack ID" after each
// RecordUsage returns; the child is killed with SIGKILL mid-stream and every
// acknowledged record must be in the database afterwards.
func TestUsageSurvivesSIGKILL(t *testing.T) {
	if db := os.Getenv(envDurabilityChild); db != "" {
		durabilityChild(db)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	db := filepath.Join(t.TempDir(), "auth.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestUsageSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), envDurabilityChild+"="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 400
	acked := map[string]bool{}
	killed := false
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() { // after the kill, drains what the child printed before it
		id, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		acked[id] = true
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code runs
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks before it was killed: %v\n%s", len(acked), err, stderr.String())
	}

	s, err := OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ok string
	if err := s.db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check = %q, %v", ok, err)
	}
	rows, err := s.db.Query("SELECT request_id FROM usage")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
	}
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
		}
	}
	t.Logf("%d acknowledged, %d stored (records in flight at the kill may or may not be)", len(acked), len(stored))
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records lost", missing, len(acked))
	}
}

// durabilityChild writes until it is killed.
func durabilityChild(db string) {
	s, err := OpenSQLite(context.Background(), db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	stdout := bufio.NewWriter(os.Stdout)
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				rec := UsageRecord{KeyID: "k", RequestID: id, At: time.Now(), Images: 1, Status: 200}
				if err := s.RecordUsage(context.Background(), rec); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(stdout, "ack %s\n", id)
				stdout.Flush() // the ack leaves the process only after the commit
				mu.Unlock()
			}
		}()
	}
	select {}
}
