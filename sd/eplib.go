package sd

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrEPLibrary: an execution-provider library (--ep-library) cannot be used:
// it is missing, is not a shared library, is not a plugin execution
// provider, or a library it depends on is missing.
var ErrEPLibrary = errors.New("execution provider library unusable")

// epLibrary is a plugin execution-provider library registered with the
// process's ONNX Runtime environment.
type epLibrary struct {
	path    string   // absolute
	regName string   // the name ONNX Runtime knows it by
	eps     []string // execution providers it added to GetEpDevices
}

// checkEPLibrary looks at the file before ONNX Runtime loads it, so the
// common mistakes get an error saying what the file is rather than a
// dlopen message. path must be absolute.
func checkEPLibrary(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist", ErrEPLibrary, path)
	case err != nil:
		return fmt.Errorf("%w: %s: %v", ErrEPLibrary, path, err)
	case st.IsDir():
		return fmt.Errorf("%w: %s is a directory, want the provider's .so file", ErrEPLibrary, path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s is not a shared library (%v)", ErrEPLibrary, path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: %s is an ELF %s, not a shared library", ErrEPLibrary, path, f.Type)
	}
	if want := hostMachine(); want != elf.EM_NONE && f.Machine != want {
		return fmt.Errorf("%w: %s is built for %s, this machine is %s", ErrEPLibrary, path, f.Machine, want)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("%w: %s: cannot read its symbols: %v", ErrEPLibrary, path, err)
	}
	exports := map[string]bool{}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF {
			exports[s.Name] = true
		}
	}
	if !exports["CreateEpFactories"] {
		if exports["GetProvider"] {
			return fmt.Errorf("%w: %s exports no CreateEpFactories: it is an ONNX Runtime provider library of the older kind; "+
				"put it beside libonnxruntime.so and use --device cuda without --ep-library", ErrEPLibrary, path)
		}
		return fmt.Errorf("%w: %s exports no CreateEpFactories: not an ONNX Runtime execution-provider library", ErrEPLibrary, path)
	}
	return nil
}

func hostMachine() elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	}
	return elf.EM_NONE
}

// missingDependency finds the library dlopen could not find in ONNX
// Runtime's message ("... with error: libcublasLt.so.13: cannot open shared
// object file: No such file or directory").
var missingDependency = regexp.MustCompile(`([^\s:]+): cannot open shared object file`)

// explainRegisterError turns ONNX Runtime's error for a library it could not
// register into one that says what is missing.
func explainRegisterError(path string, err error) error {
	msg := err.Error()
	if m := missingDependency.FindStringSubmatch(msg); m != nil && m[1] != path {
		hint := ""
		if strings.HasPrefix(filepath.Base(m[1]), "libcu") || strings.HasPrefix(filepath.Base(m[1]), "libnv") {
			hint = " (a CUDA runtime library: add the folder that holds it to LD_LIBRARY_PATH)"
		}
		return fmt.Errorf("%w: %s needs %s, which is not on the library path%s: %v", ErrEPLibrary, path, m[1], hint, err)
	}
	if strings.Contains(msg, "CreateEpFactories") {
		return fmt.Errorf("%w: %s exports no CreateEpFactories: not an ONNX Runtime execution-provider library: %v", ErrEPLibrary, path, err)
	}
	return fmt.Errorf("%w: %s: onnx runtime cannot register it: %v", ErrEPLibrary, path, err)
}

// registerEPLibraries registers each library once per environment and
// returns them in the order given. The caller holds env.
func registerEPLibraries(paths []string) ([]*epLibrary, error) {
	var libs []*epLibrary
	for _, p := range paths {
		abs, err := filepath.Abs(p) // ONNX Runtime resolves relative paths against its own folder
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrEPLibrary, p, err)
		}
		if lib, ok := env.eps[abs]; ok {
			libs = append(libs, lib)
			continue
		}
		if err := checkEPLibrary(abs); err != nil {
			return nil, err
		}
		lib, err := registerWithORT(abs, fmt.Sprintf("sdgate-ep-%d", len(env.eps)+1))
		if err != nil {
			return nil, err
		}
		env.eps[abs] = lib
		libs = append(libs, lib)
	}
	return libs, nil
}

// registerWithORT registers one library and records which execution
// providers it added. The caller holds env.
func registerWithORT(path, regName string) (*epLibrary, error) {
	before, err := epNames()
	if err != nil {
		return nil, err
	}
	if err := ort.RegisterExecutionProviderLibrary(regName, path); err != nil {
		return nil, explainRegisterError(path, err)
	}
	after, err := epNames()
	if err != nil {
		return nil, err
	}
	lib := &epLibrary{path: path, regName: regName}
	for _, name := range after {
		if !slices.Contains(before, name) {
			lib.eps = append(lib.eps, name)
		}
	}
	return lib, nil
}

func epNames() ([]string, error) {
	devs, err := ort.GetEpDevices()
	if err != nil {
		return nil, fmt.Errorf("list execution provider devices: %w", err)
	}
	var names []string
	for _, d := range devs {
		if n := d.EpName(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// unregisterEPLibraries undoes registerEPLibraries before the environment
// goes. The caller holds env.
func unregisterEPLibraries() error {
	var errs []error
	for path, lib := range env.eps {
		if err := ort.UnregisterExecutionProviderLibrary(lib.regName); err != nil {
			errs = append(errs, fmt.Errorf("unregister %s: %w", path, err))
		}
		delete(env.eps, path)
	}
	return errors.Join(errs...)
}
