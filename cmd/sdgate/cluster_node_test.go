package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sdgate/sdgate/internal/nodesdk"
)

// The official Node SDK against two gateway processes and two worker
// processes sharing NATS, PostgreSQL and Redis (testdata/cluster_node.cjs):
// generations, an edit, a URL minted by one gateway fetched through the
// other, and a cache hit across gateways, metered as cached.
func TestClusterProcessesNodeSDK(t *testing.T) {
	t.Parallel()
	node := nodesdk.Node(t)
	modules := nodesdk.Modules(t)
	c := startProcessCluster(t, clusterSpec{redis: true})
	out := filepath.Join(t.TempDir(), "ids.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "cluster_node.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SDGATE_API_KEY="+c.key, "SDGATE_MODEL=tiny", "SDGATE_OUT="+out,
		"SDGATE_GATEWAYS=http://"+c.addrs[0]+"/v1,http://"+c.addrs[1]+"/v1")
	output, err := cmd.CombinedOutput()
	t.Logf("node:\n%s", output)
	if err != nil {
		t.Fatalf("the Node SDK script failed: %v", err)
	}

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids map[string]string
	if err := json.Unmarshal(raw, &ids); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for name, want := range map[string]struct {
		endpoint string
		cached   bool
	}{"miss": {"generations", false}, "hit": {"generations", true}, "edit": {"edits", false}} {
		var endpoint string
		var cached bool
		err := conn.QueryRow(ctx, `SELECT endpoint, cached FROM usage WHERE request_id = $1`, ids[name]).Scan(&endpoint, &cached)
		if err != nil {
			t.Errorf("%s (request %q): %v", name, ids[name], err)
			continue
		}
		if !strings.Contains(endpoint, want.endpoint) || cached != want.cached {
			t.Errorf("%s: usage endpoint %q cached %v, want %s cached %v", name, endpoint, cached, want.endpoint, want.cached)
		}
	}
}
