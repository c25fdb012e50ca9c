package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=..."; else the
// module's build info says what it can.
var version = ""

func runVersion(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf runtimeFlags
	rf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sdgate %s\n", buildVersion())
	rf.device = "cpu" // version only loads the library; it never probes CUDA
	rt, err := rf.start(slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stdout, "onnx runtime: not loaded: %v\n", err)
		return nil
	}
	defer rt.Close()
	fmt.Fprintf(stdout, "onnx runtime %s (%s)\n", rt.Version(), rt.Library())
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
		if info.Main.Version != "" {
			return info.Main.Version
		}
	}
	return "dev"
}
