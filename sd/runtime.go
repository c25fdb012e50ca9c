package sd

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrCUDAUnavailable: --device cuda was asked for and CUDA cannot be used.
var ErrCUDAUnavailable = errors.New("CUDA execution provider unavailable")

// RuntimeOptions configure ONNX Runtime for the whole process.
type RuntimeOptions struct {
	Library     string   // --ort-lib; "" = search LibraryDirs
	LibraryDirs []string // see DefaultLibraryDirs
	Device      string   // auto | cpu | cuda | cuda:N ("" = auto)
	CUDA        CUDAOptions
	CPUThreads  int // intra-op threads per session; 0 = ONNX Runtime's default
	Logger      *slog.Logger
}

// CUDAOptions are passed to the CUDA execution provider as its string
// options; zero values leave ONNX Runtime's defaults.
type CUDAOptions struct {
	ConvAlgoSearch      string // EXHAUSTIVE | HEURISTIC | DEFAULT
	PreferNHWC          bool
	MemLimit            int64  // gpu_mem_limit in bytes
	ArenaExtendStrategy string // kNextPowerOfTwo | kSameAsRequested
	Extra               map[string]string
}

func (o CUDAOptions) providerOptions(deviceIndex int) map[string]string {
	m := map[string]string{"device_id": strconv.Itoa(deviceIndex)}
	if o.ConvAlgoSearch != "" {
		m["cudnn_conv_algo_search"] = o.ConvAlgoSearch
	}
	if o.PreferNHWC {
		m["prefer_nhwc"] = "1"
	}
	if o.MemLimit > 0 {
		m["gpu_mem_limit"] = strconv.FormatInt(o.MemLimit, 10)
	}
	if o.ArenaExtendStrategy != "" {
		m["arena_extend_strategy"] = o.ArenaExtendStrategy
	}
	for k, v := range o.Extra {
		m[k] = v
	}
	return m
}

// Device is where networks run.
type Device struct {
	CUDA  bool
	Index int
}

func (d Device) String() string {
	if d.CUDA {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// ParseDevice reads auto | cpu | cuda | cuda:N. auto reports ok=false for
// "no preference".
func ParseDevice(s string) (dev Device, auto bool, err error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); {
	case s == "" || s == "auto":
		return Device{}, true, nil
	case s == "cpu":
		return Device{}, false, nil
	case s == "cuda":
		return Device{CUDA: true}, false, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return Device{}, false, fmt.Errorf("device %q: want cuda:N with N >= 0", s)
		}
		return Device{CUDA: true, Index: n}, false, nil
	}
	return Device{}, false, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}

// Runtime is the process's ONNX Runtime: the loaded library, the chosen
// execution provider and the session options every network shares.
type Runtime struct {
	opts    RuntimeOptions
	library string
	log     *slog.Logger

	mu     sync.Mutex
	device Device
	auto   bool
	reason string // why this device was chosen
	closed bool
}

// ONNX Runtime's environment is process-wide; runtimes share it and the last
// Close destroys it.
var env struct {
	sync.Mutex
	users   int
	library string
}

// NewRuntime loads ONNX Runtime and picks the execution provider.
func NewRuntime(opts RuntimeOptions) (*Runtime, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dev, auto, err := ParseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	lib, err := FindLibrary(opts.Library, opts.LibraryDirs)
	if err != nil {
		return nil, err
	}
	if err := acquireEnv(lib); err != nil {
		return nil, err
	}
	r := &Runtime{opts: opts, library: lib, log: logger, auto: auto}
	if err := r.chooseDevice(dev, auto); err != nil {
		releaseEnv()
		return nil, err
	}
	logger.Info("onnx runtime ready", "library", lib, "version", ort.GetVersion(), "device", r.device.String(), "why", r.reason)
	return r, nil
}

func acquireEnv(lib string) error {
	env.Lock()
	defer env.Unlock()
	if env.users > 0 {
		if env.library != lib {
			return fmt.Errorf("onnx runtime already loaded from %s, cannot also load %s in one process", env.library, lib)
		}
		env.users++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load onnx runtime %s (sdgate needs 1.29 or newer: ONNX Runtime API %d): %w", lib, 29, err)
	}
	env.users, env.library = 1, lib
	return nil
}

func releaseEnv() {
	env.Lock()
	defer env.Unlock()
	if env.users--; env.users == 0 {
		if err := ort.DestroyEnvironment(); err != nil {
			slog.Warn("destroy onnx runtime environment", "err", err)
		}
		env.library = ""
	}
}

// chooseDevice probes the CUDA provider: appending it loads the provider
// library and its CUDA dependencies, which is where a CPU-only box fails.
func (r *Runtime) chooseDevice(want Device, auto bool) error {
	if !want.CUDA && !auto {
		r.device, r.reason = Device{}, "cpu requested"
		return nil
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	if err := r.appendCUDA(so, want.Index); err != nil {
		if auto {
			r.device, r.reason = Device{}, "CUDA not usable, using CPU: "+err.Error()
			return nil
		}
		return fmt.Errorf("%w: %s: %v", ErrCUDAUnavailable, want, err)
	}
	r.device = want
	r.reason = "cuda requested"
	if auto {
		r.reason = "CUDA provider loaded"
	}
	return nil
}

func (r *Runtime) appendCUDA(so *ort.SessionOptions, index int) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	if err := co.Update(r.opts.CUDA.providerOptions(index)); err != nil {
		return fmt.Errorf("cuda provider options: %w", err)
	}
	return so.AppendExecutionProviderCUDA(co)
}

// Device reports the device networks are created on and why it was chosen.
func (r *Runtime) Device() (Device, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.device, r.reason
}

// Library is the path of the loaded ONNX Runtime library.
func (r *Runtime) Library() string { return r.library }

// Version is ONNX Runtime's version string.
func (r *Runtime) Version() string { return ort.GetVersion() }

// sessionOptions builds options for one network on the runtime's device.
func (r *Runtime) sessionOptions(dev Device) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	if r.opts.CPUThreads > 0 {
		if err := so.SetIntraOpNumThreads(r.opts.CPUThreads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("cpu threads: %w", err)
		}
	}
	if dev.CUDA {
		if err := r.appendCUDA(so, dev.Index); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("%w: %v", ErrCUDAUnavailable, err)
		}
	}
	return so, nil
}

// fallBackToCPU is called when a CUDA session could not be created in auto
// mode: later sessions go straight to the CPU.
func (r *Runtime) fallBackToCPU(why error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.auto || !r.device.CUDA {
		return false
	}
	r.device, r.reason = Device{}, "CUDA session failed, using CPU: "+why.Error()
	r.log.Warn("falling back to cpu", "why", why)
	return true
}

// Close releases the runtime; the process's ONNX Runtime environment goes
// with the last one. Models must be closed first.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	releaseEnv()
	return nil
}
