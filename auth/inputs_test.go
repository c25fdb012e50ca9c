package auth

import (
	"context"
	"testing"
)

// Edits and variations meter the digests of what they were given.
func TestUsageRecordsInputDigests(t *testing.T) {
	g, store, _ := newTestGate(t)
	a, err := g.Admit(context.Background(), nil, "tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"sha256:aa", "sha256:bb"}
	if err := a.Finish(context.Background(), Usage{RequestID: "req_1", Endpoint: "edits", Images: 1, Status: 200, Inputs: inputs}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := store.db.QueryRow(`SELECT inputs FROM usage WHERE request_id = 'req_1'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "sha256:aa,sha256:bb" {
		t.Errorf("inputs = %q", got)
	}
}
