package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sdgate/sdgate/sd/half"
)

// File is an opened safetensors file: its header in memory, its tensors
// read on demand.
type File struct {
	r         io.ReaderAt
	closer    io.Closer
	name      string
	dataStart int64
	h         *header
	byName    map[string]int
}

// pickleExts are PyTorch's checkpoint extensions: all pickles.
var pickleExts = map[string]bool{".ckpt": true, ".pt": true, ".pth": true, ".bin": true, ".pkl": true, ".pickle": true}

// pickleAdvice is why a pickle is refused and what to do instead.
const pickleAdvice = "loading a pickle executes arbitrary code from the file, so sdgate reads only .safetensors; " +
	"convert it on a machine you trust (for example a throw-away container: torch.load it and write it with " +
	"safetensors.torch.save_file, or use the converter Hugging Face's safetensors project publishes), " +
	"or download the .safetensors version most model pages offer"

// Open opens path, refusing pickle checkpoints by extension and by content.
func Open(path string) (*File, error) {
	if ext := strings.ToLower(filepath.Ext(path)); pickleExts[ext] {
		return nil, fmt.Errorf("%s: %w: a %s file is a PyTorch pickle; %s", path, ErrPickle, ext, pickleAdvice)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: %w: a folder, not a file", path, ErrFormat)
	}
	sf, err := newFile(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.closer = f
	return sf, nil
}

// New reads the header of a safetensors file of size bytes held by r.
func New(r io.ReaderAt, size int64) (*File, error) { return newFile(r, size, "") }

func newFile(r io.ReaderAt, size int64, name string) (*File, error) {
	var prefix [8]byte
	n, err := r.ReadAt(prefix[:], 0)
	if n < len(prefix) {
		if isPickle(prefix[:n]) {
			return nil, fmt.Errorf("%w: the file is a PyTorch pickle; %s", ErrPickle, pickleAdvice)
		}
		return nil, fmt.Errorf("%w: %d bytes, too short for a header (%v)", ErrFormat, n, err)
	}
	if isPickle(prefix[:]) {
		return nil, fmt.Errorf("%w: the file is a PyTorch pickle; %s", ErrPickle, pickleAdvice)
	}
	hlen := binary.LittleEndian.Uint64(prefix[:])
	if hlen > MaxHeaderBytes || hlen > uint64(size-8) {
		return nil, fmt.Errorf("%w: header length %d (file %d bytes, limit %d)", ErrFormat, hlen, size, MaxHeaderBytes)
	}
	js := make([]byte, hlen)
	if _, err := r.ReadAt(js, 8); err != nil {
		return nil, fmt.Errorf("%w: reading the header: %v", ErrFormat, err)
	}
	dataStart := 8 + int64(hlen)
	h, err := parseHeader(js, size-dataStart)
	if err != nil {
		return nil, err
	}
	f := &File{r: r, name: name, dataStart: dataStart, h: h, byName: make(map[string]int, len(h.tensors))}
	for i, t := range h.tensors {
		f.byName[t.Name] = i
	}
	return f, nil
}

// isPickle recognises a pickle stream (PROTO opcode 0x80 and a protocol
// 2-5) and torch.save's zip container.
func isPickle(b []byte) bool {
	if len(b) >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 {
		return true
	}
	return bytes.HasPrefix(b, []byte("PK\x03\x04"))
}

// Close closes the underlying file when Open opened it.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Name is the path the file was opened from ("" for New).
func (f *File) Name() string { return f.name }

// Metadata is the header's __metadata__ (empty when absent).
func (f *File) Metadata() map[string]string { return f.h.metadata }

// Tensors lists every tensor, sorted by name. The slice is shared: do not
// modify it.
func (f *File) Tensors() []Info { return f.h.tensors }

// Info returns the named tensor's description.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Info{}, false
	}
	return f.h.tensors[i], true
}

// Section returns a reader of the named tensor's raw little-endian bytes.
func (f *File) Section(name string) (*io.SectionReader, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return io.NewSectionReader(f.r, f.dataStart+t.Begin, t.Bytes()), nil
}

// chunkBytes is how much of a tensor is read at a time while converting.
const chunkBytes = 1 << 20

// Float32 reads the named tensor (F16, BF16, F32 or F64) as float32 values.
// Its memory is the tensor's, once, plus one read chunk.
func (f *File) Float32(name string) ([]float32, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	size, _ := t.DType.Size()
	switch t.DType {
	case F16, BF16, F32, F64:
	default:
		return nil, fmt.Errorf("%w: tensor %q is %s, not a float", ErrDType, name, t.DType)
	}
	out := make([]float32, t.Numel())
	sec := io.NewSectionReader(f.r, f.dataStart+t.Begin, t.Bytes())
	buf := make([]byte, min(chunkBytes, t.Bytes()))
	for done := int64(0); done < int64(len(out)); {
		n := min(int64(len(buf))/size, int64(len(out))-done)
		chunk := buf[:n*size]
		if _, err := io.ReadFull(sec, chunk); err != nil {
			return nil, fmt.Errorf("read tensor %q: %w", name, err)
		}
		decode(out[done:done+n], chunk, t.DType)
		done += n
	}
	return out, nil
}

func decode(dst []float32, src []byte, dt DType) {
	switch dt {
	case F16:
		table := f16Table()
		for i := range dst {
			dst[i] = table[binary.LittleEndian.Uint16(src[2*i:])]
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	}
}

// f16Table maps every float16 bit pattern to its float32 value: a lookup
// decodes checkpoints several times faster than converting each value.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = half.Float16(uint16(i)).Float32()
	}
	return &t
})
