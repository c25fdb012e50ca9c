package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sdgate/sdgate/sd"
)

// runtimeFlags are the ONNX Runtime settings shared by serve and generate.
type runtimeFlags struct {
	ortLib         string
	device         string
	cpuThreads     int
	cudaConvAlgo   string
	cudaPreferNHWC bool
	cudaMemLimit   int64
	cudaArena      string
	cudaOptions    string
	epLibraries    pathList
	allowFallback  bool
}

func (f *runtimeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ortLib, "ort-lib", "", "path of libonnxruntime.so (default: lib/ beside the binary or the repo)")
	fs.StringVar(&f.device, "device", "auto", "execution device: auto, cpu, cuda or cuda:N")
	fs.IntVar(&f.cpuThreads, "cpu-threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
	fs.StringVar(&f.cudaConvAlgo, "cuda-conv-algo", "", "cudnn_conv_algo_search: EXHAUSTIVE, HEURISTIC or DEFAULT")
	fs.BoolVar(&f.cudaPreferNHWC, "cuda-prefer-nhwc", false, "let the CUDA provider prefer NHWC layouts")
	fs.Int64Var(&f.cudaMemLimit, "cuda-mem-limit", 0, "CUDA arena limit in bytes (0: no limit)")
	fs.StringVar(&f.cudaArena, "cuda-arena-extend", "", "arena_extend_strategy: kNextPowerOfTwo or kSameAsRequested")
	fs.StringVar(&f.cudaOptions, "cuda-options", "", "more CUDA provider options, key=value,key=value")
	fs.Var(&f.epLibraries, "ep-library", "plugin execution-provider library (e.g. libonnxruntime_providers_cuda.so) giving the CUDA device; repeatable, or a :-separated list")
	fs.BoolVar(&f.allowFallback, "allow-cpu-fallback", false, "run a network on the CPU when its CUDA session cannot be created (default: that is an error)")
}

// pathList is a repeatable flag of paths; one value may also hold several
// separated by ':' (the environment variable can be given only once).
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, ":") }

func (l *pathList) Set(s string) error {
	for _, p := range strings.Split(s, ":") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func (f *runtimeFlags) options(logger *slog.Logger) (sd.RuntimeOptions, error) {
	extra := map[string]string{}
	if f.cudaOptions != "" {
		for _, kv := range strings.Split(f.cudaOptions, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return sd.RuntimeOptions{}, fmt.Errorf("--cuda-options: %q is not key=value", kv)
			}
			extra[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	exe, _ := os.Executable()
	wd, _ := os.Getwd()
	return sd.RuntimeOptions{
		Library:     f.ortLib,
		LibraryDirs: sd.DefaultLibraryDirs(exe, wd),
		Device:      f.device,
		CPUThreads:  f.cpuThreads,
		CUDA: sd.CUDAOptions{
			ConvAlgoSearch:      f.cudaConvAlgo,
			PreferNHWC:          f.cudaPreferNHWC,
			MemLimit:            f.cudaMemLimit,
			ArenaExtendStrategy: f.cudaArena,
			Extra:               extra,
		},
		Logger:           logger,
		EPLibraries:      f.epLibraries,
		AllowCPUFallback: f.allowFallback,
	}, nil
}

func (f *runtimeFlags) start(logger *slog.Logger) (*sd.Runtime, error) {
	opts, err := f.options(logger)
	if err != nil {
		return nil, err
	}
	return sd.NewRuntime(opts)
}

// cliLogger is the logger of the one-shot commands (generate, gpucheck):
// warnings only, unless -v asks for the runtime's and models' decisions.
func cliLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
