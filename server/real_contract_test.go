package server

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
)

// The contract tests again, against the real pipeline: a tiny synthetic SD
// model on ONNX Runtime behind the real models.Registry and GPU queue.

var (
	realOnce sync.Once
	realReg  *models.Registry
	realErr  error
	realDir  string
)

func realGenerator(t testing.TB) *models.Registry {
	t.Helper()
	open := realOpener(t)
	realOnce.Do(func() {
		if realDir, realErr = os.MkdirTemp("", "sdgate-server-real-"); realErr != nil {
			return
		}
		if _, realErr = synth.Write(context.Background(), filepath.Join(realDir, "tiny"), synth.Options{Preset: "tiny"}, nil); realErr != nil {
			return
		}
		realReg, realErr = models.NewRegistry(models.RegistryOptions{Open: open, Dir: realDir, QueueSize: 8, KeepAlive: -1, DefaultAliases: AliasNames()})
	})
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realReg
}

// closeRealGenerator runs from TestMain after every test.
func closeRealGenerator() {
	if realReg != nil {
		realReg.Close(context.Background())
	}
	closeRealRuntime()
	if realDir != "" {
		os.RemoveAll(realDir)
	}
}

func TestContractGoOpenAIRealPipeline(t *testing.T) {
	runGoOpenAIContract(t, realGenerator(t))
}

func TestContractNodeSDKRealPipeline(t *testing.T) {
	runNodeContract(t, realGenerator(t))
}
