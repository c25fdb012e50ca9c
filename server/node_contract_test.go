package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/internal/nodesdk"
	"github.com/sdgate/sdgate/models"
)

// TestContractNodeSDK runs testdata/openai_node_contract.cjs, which drives
// the server with the official OpenAI Node SDK.
func TestContractNodeSDK(t *testing.T) {
	runNodeContract(t, newFakeGenerator())
}

func runNodeContract(t *testing.T, gen Backend) {
	if testing.Short() {
		t.Skip("skipping the Node SDK contract in -short mode")
	}
	node := nodesdk.Node(t)
	modules := nodeSDK(t)
	infos := slices.Clone(gen.Models())
	slices.SortFunc(infos, func(a, b models.Info) int { return strings.Compare(a.ID, b.ID) })
	if len(infos) == 0 {
		t.Fatal("the generator serves no model")
	}
	ts := startServer(t, gen)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_contract.cjs"))
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+modules,
		"SDGATE_BASE_URL="+ts.URL+"/v1",
		"SDGATE_LOCAL_MODEL="+infos[0].ID,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node contract:\n%s", out)
	if err != nil {
		t.Fatalf("node contract failed: %v", err)
	}
}

// nodeSDK is the NODE_PATH folder with the official Node SDK.
func nodeSDK(t *testing.T) string { return nodesdk.Modules(t) }
