// Command sdgate is a self-hosted, OpenAI-compatible image generation server.
// main parses nothing itself: run does, so tests can drive every subcommand
// with their own arguments, environment and output streams.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// env is how subcommands read the environment; tests pass a map's lookup.
type env func(key string) string

// command is one subcommand: it gets its own arguments (after the name).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version of sdgate and of ONNX Runtime", runVersion},
		"synth":    {"write a small SD-architecture ONNX model with random weights", runSynth},
		"import":   {"turn a .safetensors checkpoint into a model folder", runImport},
		"generate": {"generate images from a prompt on a model folder, without a server", runGenerate},
		"gpucheck": {"measure a model on the device: provider, sessions, step and decode times, memory", runGPUCheck},
		"serve":    {"serve the OpenAI Images API", runServe},
		"keys":     {"create, list and revoke API keys; show their usage", runKeys},
		"gateway":  {"serve the API for a cluster: jobs to workers over NATS, keys in PostgreSQL", runGateway},
		"worker":   {"run jobs from NATS on this machine's GPU for the cluster's gateways", runWorker},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sdgate:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errors.New("no subcommand given")
		}
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: sdgate <subcommand> [flags]")
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "Every flag can also be set as SDGATE_<FLAG> (e.g. SDGATE_ORT_LIB); flags win.")
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from SDGATE_<NAME> (upper case, '-' -> '_'). Flags win.
func parseFlags(fs *flag.FlagSet, args []string, getenv env) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || firstErr != nil {
			return
		}
		key := envName(f.Name)
		if v := getenv(key); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	})
	return firstErr
}

func envName(flagName string) string {
	return "SDGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
