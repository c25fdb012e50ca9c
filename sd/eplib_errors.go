package sd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ortFailure is a kind of failure recognised in ONNX Runtime's error text
// (its errors carry a message only) and what to tell the user about it.
type ortFailure struct {
	sentinel error
	needles  []string // any of these, matched lower-case
	hint     string   // %s is the device
}

var ortFailures = []ortFailure{
	{ErrOutOfMemory, []string{"out of memory", "failed to allocate memory", "alloc_failed", "cudaerrormemoryallocation", "is smaller than requested bytes"},
		"on %s: use a smaller size or fewer images (on a GPU: free it, or raise --cuda-mem-limit)"},
	{ErrNoDevice, []string{"no cuda-capable device", "cudaerrornodevice", "cuda failure 100:"},
		"the CUDA runtime sees no GPU for %s (check nvidia-smi and CUDA_VISIBLE_DEVICES)"},
	{ErrNoDevice, []string{"invalid device ordinal", "cudaerrorinvaliddevice", "cuda failure 101:"},
		"there is no GPU with the index of %s (nvidia-smi lists them)"},
	{ErrCUDAUnavailable, []string{"driver version is insufficient", "cudaerrorinsufficientdriver", "cuda failure 35:"},
		"the NVIDIA driver is older than the CUDA runtime of the provider needs for %s (CUDA 13 needs driver 580 or newer)"},
	{ErrCUDAUnavailable, []string{"unable to dlopen libcuda.so.1"}, noDriverHint},
	{ErrCUDAUnavailable, []string{"cudnn library was not found"}, noCUDNNHint},
	{ErrCUDAUnavailable, []string{"not enabled in this build"},
		"this ONNX Runtime library was built without CUDA, so %s needs --ep-library with a plugin CUDA provider"},
	{ErrCUDAUnavailable, []string{"failed to load shared library"}, noProviderHint},
}

const (
	noDriverHint   = "no NVIDIA driver library (libcuda.so.1) for %s: is this a GPU machine?"
	noCUDNNHint    = "cuDNN 9 is not on the library path for %s: add the folder holding libcudnn.so.9 (and a libcudnn.so link to it) to LD_LIBRARY_PATH"
	noProviderHint = "the CUDA provider libraries (libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so) must sit beside libonnxruntime.so for %s, or pass --ep-library"
	missingLibHint = "the CUDA provider for %s needs %s, which is not on the library path: add the folder that holds it to LD_LIBRARY_PATH"
)

// missingLibraryHint names what dlopen could not find, when it was that.
func missingLibraryHint(msg string, dev Device) (string, bool) {
	m := missingDependency.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	switch name := filepath.Base(m[1]); {
	case strings.HasPrefix(name, "libcuda.so"):
		return fmt.Sprintf(noDriverHint, dev), true
	case strings.HasPrefix(name, "libcudnn"):
		return fmt.Sprintf(noCUDNNHint, dev), true
	case strings.HasPrefix(name, "libonnxruntime_providers"):
		return fmt.Sprintf(noProviderHint, dev), true
	default:
		return fmt.Sprintf(missingLibHint, dev, name), true
	}
}

// explainORTError recognises ONNX Runtime failures on dev, wrapping the
// matching sentinel and a hint around the original error; others come back
// as they are. Errors that already carry one of our sentinels are left alone.
func explainORTError(err error, dev Device) error {
	if err == nil || errors.Is(err, ErrOutOfMemory) || errors.Is(err, ErrNoDevice) ||
		errors.Is(err, ErrCUDAUnavailable) || errors.Is(err, ErrEPLibrary) {
		return err
	}
	if hint, ok := missingLibraryHint(err.Error(), dev); ok {
		return fmt.Errorf("%w: %s: %w", ErrCUDAUnavailable, hint, err)
	}
	msg := strings.ToLower(err.Error())
	for _, f := range ortFailures {
		for _, n := range f.needles {
			if strings.Contains(msg, n) {
				return fmt.Errorf("%w: %s: %w", f.sentinel, fmt.Sprintf(f.hint, dev), err)
			}
		}
	}
	return err
}

// cudaUnavailable wraps err in ErrCUDAUnavailable for dev unless it already is.
func cudaUnavailable(dev Device, err error) error {
	if errors.Is(err, ErrCUDAUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrCUDAUnavailable, dev, err)
}
