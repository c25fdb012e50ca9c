package sd

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

	// EPLibraries are plugin execution-provider libraries (--ep-library):
	// with any given, CUDA comes from the GPU device they offer rather than
	// from the provider libraries beside libonnxruntime.so.
	EPLibraries []string
	// AllowCPUFallback lets a network whose CUDA session cannot be created
	// run on the CPU instead (with a warning); without it that is an error.
	AllowCPUFallback bool
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
	plugin  *pluginDevice // the device sessions append when EPLibraries are used

	mu        sync.Mutex
	device    Device
	reason    string   // why this device was chosen
	summary   string   // reason, short enough for one INFO line ("" = reason)
	fallbacks []string // networks that went to the CPU, and why
	closed    bool
}

// pluginDevice is the EP device a plugin library offered for our GPU.
type pluginDevice struct {
	handle  ort.EpDevice
	info    EPDevice
	library string
}

// ONNX Runtime's environment is process-wide (onnxruntime_go keeps it in
// package state, so one library per process); runtimes share it and the last
// Close destroys it. Plugin libraries are registered with it once.
var env struct {
	sync.Mutex
	users   int
	library string
	api     epAPI
	eps     map[string]*epLibrary // by absolute path
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
	r := &Runtime{opts: opts, library: lib, log: logger}
	if err := r.chooseDevice(dev, auto); err != nil {
		releaseEnv(logger)
		return nil, err
	}
	why := r.reason
	if r.summary != "" {
		why = r.summary
	}
	logger.Info("onnx runtime ready", "library", lib, "version", ort.GetVersion(), "device", r.device.String(), "why", why)
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
	env.api, env.eps = loadEPAPI(lib), map[string]*epLibrary{}
	return nil
}

func releaseEnv(logger *slog.Logger) {
	env.Lock()
	defer env.Unlock()
	if env.users--; env.users == 0 {
		if err := unregisterEPLibraries(); err != nil {
			logger.Warn("unregister execution provider libraries", "err", err)
		}
		env.api = epAPI{}
		if err := ort.DestroyEnvironment(); err != nil {
			logger.Warn("destroy onnx runtime environment", "err", err)
		}
		env.library = ""
	}
}

// chooseDevice probes the CUDA provider: appending it loads the provider
// library and its CUDA dependencies, which is where a CPU-only box fails.
// With plugin libraries, registering them and finding their GPU device is
// the probe. In auto mode any failure means the CPU, and the reason says why.
func (r *Runtime) chooseDevice(want Device, auto bool) error {
	if !want.CUDA && !auto {
		r.device, r.reason = Device{}, "cpu requested"
		if len(r.opts.EPLibraries) > 0 {
			r.reason += " (execution-provider libraries not loaded)"
		}
		return nil
	}
	want.CUDA = true
	err := r.probeCUDA(want)
	if err != nil {
		r.plugin = nil
		err = cudaUnavailable(want, explainORTError(err, want))
		if auto {
			// auto: the CPU is a fine answer, not a warning. The provider's
			// reason is long (library paths, CUDA versions): once, at debug.
			r.device, r.reason = Device{}, "CUDA not usable, using CPU: "+err.Error()
			r.summary = "CUDA not usable, using CPU (the reason is logged at debug level)"
			r.log.Debug("cuda not usable", "why", err)
			return nil
		}
		return err
	}
	r.device = want
	r.reason = "cuda requested"
	if auto {
		r.reason = "CUDA provider loaded"
	}
	if r.plugin != nil {
		r.reason += " from " + r.plugin.library + ": " + r.plugin.info.String()
	}
	return nil
}

func (r *Runtime) probeCUDA(want Device) error {
	if len(r.opts.EPLibraries) > 0 {
		p, err := findPluginDevice(r.opts.EPLibraries, want.Index)
		if err != nil {
			return err
		}
		r.plugin = p
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	return r.appendCUDA(so, want.Index)
}

// findPluginDevice registers the libraries and picks the GPU device of
// index that their providers offer.
func findPluginDevice(libraries []string, index int) (*pluginDevice, error) {
	env.Lock()
	defer env.Unlock()
	libs, err := registerEPLibraries(libraries)
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, l := range libs {
		eps = append(eps, l.eps...)
	}
	handles, infos, err := epDevices()
	if err != nil {
		return nil, err
	}
	i, err := pickGPUDevice(infos, eps, index)
	if err != nil {
		return nil, err
	}
	p := &pluginDevice{handle: handles[i], info: infos[i]}
	for _, l := range libs {
		if slices.Contains(l.eps, infos[i].EP) {
			p.library = l.path
		}
	}
	return p, nil
}

// appendCUDA adds the CUDA provider for GPU index to so: the plugin's EP
// device when there is one, else the provider ONNX Runtime loads itself.
func (r *Runtime) appendCUDA(so *ort.SessionOptions, index int) error {
	if r.plugin != nil {
		opts := r.opts.CUDA.providerOptions(index)
		if id, ok := r.plugin.info.Options["device_id"]; ok {
			opts["device_id"] = id // the device's own numbering wins
		}
		if err := so.AppendExecutionProviderV2([]ort.EpDevice{r.plugin.handle}, opts); err != nil {
			return fmt.Errorf("append %s: %w", r.plugin.info.EP, err)
		}
		return nil
	}
	return r.appendBuiltinCUDA(so, index)
}

func (r *Runtime) appendBuiltinCUDA(so *ort.SessionOptions, index int) error {
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

// Provider describes the execution provider sessions are created with.
type Provider struct {
	Name    string   // CUDAExecutionProvider or CPUExecutionProvider
	Library string   // the plugin library it came from; "" when ONNX Runtime loads it itself
	Device  EPDevice // the plugin's device; zero otherwise
}

func (p Provider) String() string {
	if p.Library == "" {
		return p.Name
	}
	return fmt.Sprintf("%s from %s on %s", p.Name, p.Library, p.Device)
}

// Provider reports the execution provider of the runtime's device.
func (r *Runtime) Provider() Provider {
	dev, _ := r.Device()
	switch {
	case !dev.CUDA:
		return Provider{Name: "CPUExecutionProvider"}
	case r.plugin != nil:
		return Provider{Name: r.plugin.info.EP, Library: r.plugin.library, Device: r.plugin.info}
	}
	return Provider{Name: "CUDAExecutionProvider"}
}

// EPDevices lists every (execution provider, device) pair ONNX Runtime
// offers, plugin libraries' included.
func (r *Runtime) EPDevices() ([]EPDevice, error) {
	env.Lock()
	defer env.Unlock()
	_, infos, err := epDevices()
	return infos, err
}

// Fallbacks lists the networks that run on the CPU although the runtime's
// device is CUDA (AllowCPUFallback), each with the reason.
func (r *Runtime) Fallbacks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.fallbacks)
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
			return nil, cudaUnavailable(dev, explainORTError(err, dev))
		}
	}
	return so, nil
}

// fallBackToCPU is called when network's CUDA session could not be
// created: with AllowCPUFallback that network goes to the CPU (the others
// still try CUDA) and the reason is logged and kept; without, the caller
// reports the error.
func (r *Runtime) fallBackToCPU(network string, why error) bool {
	if !r.opts.AllowCPUFallback {
		return false
	}
	r.mu.Lock()
	r.fallbacks = append(r.fallbacks, network+": "+why.Error())
	r.mu.Unlock()
	r.log.Warn("network falls back to cpu", "network", network, "why", why)
	return true
}

// ErrRuntimeClosed: a closed (or nil) Runtime was used.
var ErrRuntimeClosed = errors.New("onnx runtime closed")

// usable reports whether r may still inspect and create sessions.
func (r *Runtime) usable() error {
	if r == nil {
		return fmt.Errorf("%w: no runtime", ErrRuntimeClosed)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrRuntimeClosed
	}
	return nil
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
	releaseEnv(r.log)
	return nil
}
