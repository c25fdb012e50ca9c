package sd

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// onnxruntime_go wraps an OrtEpDevice's provider name and vendor only; the
// hardware behind it (GPU or CPU, which one) and the options it carries are
// read here from ONNX Runtime's C API. OrtApi is a table of function
// pointers that only ever grows at its end, so an entry is found by index.

typedef struct {
	const void *(*get_api)(uint32_t version);
	const char *(*get_version_string)(void);
} sdgate_api_base;

typedef const sdgate_api_base *(*sdgate_get_api_base)(void);

// sdgate_ort_api finds the OrtApi table of the ONNX Runtime library the
// process has already loaded (RTLD_NOLOAD: never loads a second copy).
static const void *const *sdgate_ort_api(const char *library, uint32_t version) {
	void *h = dlopen(library, RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL) return NULL;
	const void *const *api = NULL;
	sdgate_get_api_base get_base = (sdgate_get_api_base)dlsym(h, "OrtGetApiBase");
	if (get_base != NULL) api = (const void *const *)get_base()->get_api(version);
	dlclose(h); // drops this reference only; onnxruntime_go holds its own
	return api;
}

static const char *sdgate_call_str(const void *const *api, int i, const void *p) {
	return ((const char *(*)(const void *))api[i])(p);
}

static const void *sdgate_call_ptr(const void *const *api, int i, const void *p) {
	return ((const void *(*)(const void *))api[i])(p);
}

static uint32_t sdgate_call_u32(const void *const *api, int i, const void *p) {
	return ((uint32_t (*)(const void *))api[i])(p);
}

static int sdgate_call_enum(const void *const *api, int i, const void *p) {
	return ((int (*)(const void *))api[i])(p);
}

static size_t sdgate_call_pairs(const void *const *api, int i, const void *kvps,
                                const char *const **keys, const char *const **values) {
	size_t n = 0;
	((void (*)(const void *, const char *const **, const char *const **, size_t *))api[i])(kvps, keys, values, &n);
	return n;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoDevice: no device of the requested kind and index is there to run on.
var ErrNoDevice = errors.New("no such device")

// Entries of ONNX Runtime's OrtApi table (onnxruntime_c_api.h), all added in
// API version 22 (ONNX Runtime 1.22) and fixed since.
const (
	epAPIVersion          = 22
	apiGetKeyValuePairs   = 298
	apiHardwareDeviceType = 307
	apiHardwareVendorID   = 308
	apiHardwareVendor     = 309
	apiHardwareDeviceID   = 310
	apiHardwareMetadata   = 311
	apiEpDeviceEpName     = 312
	apiEpDeviceEpVendor   = 313
	apiEpDeviceEpOptions  = 315
	apiEpDeviceDevice     = 316
)

// ort.EpDevice holds a single *OrtEpDevice; these two lines stop the build if
// that ever changes, since epDevicePointer reads it as one pointer.
var (
	_ [unsafe.Sizeof(ort.EpDevice{}) - unsafe.Sizeof(unsafe.Pointer(nil))]struct{}
	_ [unsafe.Sizeof(unsafe.Pointer(nil)) - unsafe.Sizeof(ort.EpDevice{})]struct{}
)

func epDevicePointer(d ort.EpDevice) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&d)) }

// epAPI is the OrtApi table of the loaded library; nil when it cannot be
// found, and then devices are described by provider name only.
type epAPI struct{ table *unsafe.Pointer }

func loadEPAPI(library string) epAPI {
	cLib := C.CString(library)
	defer C.free(unsafe.Pointer(cLib))
	return epAPI{table: (*unsafe.Pointer)(unsafe.Pointer(C.sdgate_ort_api(cLib, epAPIVersion)))}
}

func (a epAPI) c() *unsafe.Pointer { return a.table }

// EPDevice is one (execution provider, hardware device) pair ONNX Runtime
// offers after plugin libraries are registered.
type EPDevice struct {
	EP       string            // e.g. CUDAExecutionProvider
	EPVendor string            // e.g. Microsoft
	Type     string            // CPU, GPU or NPU; "" when it cannot be read
	Vendor   string            // the hardware's vendor, e.g. NVIDIA
	VendorID uint32            // PCI vendor id: 0x10de is NVIDIA
	DeviceID uint32            // PCI device id
	Options  map[string]string // options the provider attached, e.g. device_id
	Metadata map[string]string // what ONNX Runtime discovered about the hardware
}

func (d EPDevice) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", d.EP, d.EPVendor)
	if d.Type != "" {
		fmt.Fprintf(&b, " on %s %s [%04x:%04x]", d.Vendor, d.Type, d.VendorID, d.DeviceID)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Options)) {
		fmt.Fprintf(&b, " %s=%s", k, d.Options[k])
	}
	return b.String()
}

// describe reads everything ONNX Runtime knows about d. The provider name
// and vendor are read both through onnxruntime_go and through the table:
// if they differ, the table is not laid out as expected and the hardware
// is left unknown rather than guessed.
func (a epAPI) describe(d ort.EpDevice) EPDevice {
	out := EPDevice{EP: d.EpName(), EPVendor: d.EpVendor()}
	p := epDevicePointer(d)
	if a.table == nil || p == nil {
		return out
	}
	if C.GoString(C.sdgate_call_str(a.c(), apiEpDeviceEpName, p)) != out.EP ||
		C.GoString(C.sdgate_call_str(a.c(), apiEpDeviceEpVendor, p)) != out.EPVendor {
		return out
	}
	out.Options = a.pairs(C.sdgate_call_ptr(a.c(), apiEpDeviceEpOptions, p))
	hw := C.sdgate_call_ptr(a.c(), apiEpDeviceDevice, p)
	if hw == nil {
		return out
	}
	switch C.sdgate_call_enum(a.c(), apiHardwareDeviceType, hw) {
	case 0:
		out.Type = "CPU"
	case 1:
		out.Type = "GPU"
	case 2:
		out.Type = "NPU"
	default:
		out.Type = "unknown"
	}
	out.Vendor = C.GoString(C.sdgate_call_str(a.c(), apiHardwareVendor, hw))
	out.VendorID = uint32(C.sdgate_call_u32(a.c(), apiHardwareVendorID, hw))
	out.DeviceID = uint32(C.sdgate_call_u32(a.c(), apiHardwareDeviceID, hw))
	out.Metadata = a.pairs(C.sdgate_call_ptr(a.c(), apiHardwareMetadata, hw))
	return out
}

func (a epAPI) pairs(kvps unsafe.Pointer) map[string]string {
	if kvps == nil {
		return nil
	}
	var keys, values **C.char
	n := int(C.sdgate_call_pairs(a.c(), apiGetKeyValuePairs, kvps, &keys, &values))
	if n == 0 {
		return nil
	}
	ks, vs := unsafe.Slice(keys, n), unsafe.Slice(values, n)
	m := make(map[string]string, n)
	for i := range n {
		m[C.GoString(ks[i])] = C.GoString(vs[i])
	}
	return m
}

// epDevices lists the devices ONNX Runtime offers now, with descriptions in
// the same order. The caller holds env.
func epDevices() ([]ort.EpDevice, []EPDevice, error) {
	devs, err := ort.GetEpDevices()
	if err != nil {
		return nil, nil, fmt.Errorf("list execution provider devices: %w", err)
	}
	infos := make([]EPDevice, len(devs))
	for i, d := range devs {
		infos[i] = env.api.describe(d)
	}
	return devs, infos, nil
}

// pickGPUDevice chooses the GPU device of index among devs, considering only
// devices of the execution providers in eps (those the user's libraries
// added). A device that carries a device_id option is matched on it; else
// index counts the candidates in ONNX Runtime's order. Devices whose type
// could not be read count as GPUs unless they belong to the CPU provider.
func pickGPUDevice(devs []EPDevice, eps []string, index int) (int, error) {
	var candidates []int
	for i, d := range devs {
		gpu := d.Type == "GPU" || (d.Type == "" && d.EP != "CPUExecutionProvider")
		if gpu && slices.Contains(eps, d.EP) {
			candidates = append(candidates, i)
		}
	}
	byOption := false
	for _, i := range candidates {
		if id, ok := devs[i].Options["device_id"]; ok {
			byOption = true
			if id == strconv.Itoa(index) {
				return i, nil
			}
		}
	}
	if !byOption && index < len(candidates) {
		return candidates[index], nil
	}
	list := make([]string, len(devs))
	for i, d := range devs {
		list[i] = d.String()
	}
	from := "the execution-provider libraries offered no device at all"
	if len(eps) > 0 {
		from = "looked at the devices of " + strings.Join(eps, ", ")
	}
	return 0, fmt.Errorf("%w: no GPU device of index %d among: %s (%s)", ErrNoDevice, index, strings.Join(list, "; "), from)
}
