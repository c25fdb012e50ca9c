package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// codecMagic opens every encoded entry; its last byte is the layout version.
const codecMagic = "sdgc\x01"

// ErrCorrupt: stored bytes are not an entry this version can read.
var ErrCorrupt = errors.New("corrupt cache entry")

// encodeEntry lays e out compactly for a shared store:
//
//	magic, varint created (unix ns, 0 = zero time), varint elapsed (ns),
//	content type, revised prompt (uvarint length + bytes each),
//	uvarint seed count + uvarint seeds, uvarint image count + images.
func encodeEntry(e Entry) []byte {
	n := len(codecMagic) + 3*binary.MaxVarintLen64 + len(e.ContentType) + len(e.RevisedPrompt) +
		(len(e.Seeds)+len(e.Images)+2)*binary.MaxVarintLen64
	for _, img := range e.Images {
		n += len(img)
	}
	b := make([]byte, 0, n)
	b = append(b, codecMagic...)
	var created int64
	if !e.Created.IsZero() {
		created = e.Created.UnixNano()
	}
	b = binary.AppendVarint(b, created)
	b = binary.AppendVarint(b, int64(e.Elapsed))
	b = appendBytes(b, []byte(e.ContentType))
	b = appendBytes(b, []byte(e.RevisedPrompt))
	b = binary.AppendUvarint(b, uint64(len(e.Seeds)))
	for _, s := range e.Seeds {
		b = binary.AppendUvarint(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Images)))
	for _, img := range e.Images {
		b = appendBytes(b, img)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeEntry reads what encodeEntry wrote. Images alias b.
func decodeEntry(b []byte) (Entry, error) {
	d := decoder{b: b}
	if len(b) < len(codecMagic) || string(b[:len(codecMagic)]) != codecMagic {
		return Entry{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	d.b = b[len(codecMagic):]
	var e Entry
	if created := d.varint(); created != 0 {
		e.Created = time.Unix(0, created)
	}
	e.Elapsed = time.Duration(d.varint())
	e.ContentType = string(d.bytes())
	e.RevisedPrompt = string(d.bytes())
	if n := d.count(1); n > 0 {
		e.Seeds = make([]uint64, n)
		for i := range e.Seeds {
			e.Seeds[i] = d.uvarint()
		}
	}
	if n := d.count(1); n > 0 {
		e.Images = make([][]byte, n)
		for i := range e.Images {
			e.Images[i] = d.bytes()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrCorrupt, d.err)
	}
	return e, nil
}

// decoder reads varints and byte strings; the first error sticks and every
// later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length of items that take at least minBytes each, refusing
// one the remaining bytes cannot hold (so a corrupt count allocates nothing).
func (d *decoder) count(minBytes int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/minBytes) {
		d.err = fmt.Errorf("count %d exceeds %d remaining bytes", v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
