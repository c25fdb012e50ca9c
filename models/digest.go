package models

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Model fingerprint tuning.
const (
	// WholeFileLimit: files up to this size (configs, tokenizers,
	// scheduler settings, small graphs) are hashed whole.
	WholeFileLimit = 4 << 20
	// SampleWindows windows of SampleWindowBytes, spread evenly from the
	// first byte to the last, stand for each larger file: 2 MiB read
	// however big the weights are.
	SampleWindows     = 32
	SampleWindowBytes = 64 << 10
)

// ErrNotModelDir: FolderDigest was given something that is not a directory.
var ErrNotModelDir = errors.New("not a model directory")

// FolderDigest fingerprints a model folder cheaply, although weights may be
// many GB: the relative path and size of every file, the whole content of
// files up to WholeFileLimit, and SampleWindows windows spread over each
// larger file. Symbolic links are followed (Hugging Face snapshots are
// links into a blob store); a directory reached twice is read once.
//
// The trade-off: modification times are left out on purpose, so two copies
// of one model on two hosts get one digest and instances behind one load
// balancer share a Redis cache. The price is that rewriting a weights file
// in place with a same-size file that matches in every sampled window goes
// unnoticed; retrained or fine-tuned weights differ everywhere and are
// caught. An operator who patches weights surgically changes Params.Engine
// (or flushes the cache).
func FolderDigest(dir string) (string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("model digest: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("model digest: %w: %s", ErrNotModelDir, dir)
	}
	d := modelDigester{h: sha256.New(), seen: map[string]bool{}}
	if err := d.dir(dir, ""); err != nil {
		return "", fmt.Errorf("model digest of %s: %w", dir, err)
	}
	return "sha256:" + hex.EncodeToString(d.h.Sum(nil)), nil
}

type modelDigester struct {
	h    hash.Hash
	seen map[string]bool // real paths of directories read
	buf  []byte
}

func (d *modelDigester) dir(path, rel string) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if d.seen[resolved] {
		return nil
	}
	d.seen[resolved] = true
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	slices.Sort(names) // ReadDir sorts already; the digest must not rely on it
	for _, name := range names {
		full := filepath.Join(path, name)
		relName := filepath.ToSlash(filepath.Join(rel, name))
		info, err := os.Stat(full) // follows links
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := d.dir(full, relName); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := d.file(full, relName, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// file writes the path, the size and the content (whole or sampled).
func (d *modelDigester) file(path, rel string, size int64) error {
	d.field([]byte(rel))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(size))
	d.h.Write(b[:])
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if size <= WholeFileLimit {
		n, err := io.Copy(d.h, f)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%s changed while reading (%d of %d bytes)", rel, n, size)
		}
		return nil
	}
	if d.buf == nil {
		d.buf = make([]byte, SampleWindowBytes)
	}
	last := size - SampleWindowBytes
	for i := int64(0); i < SampleWindows; i++ {
		off := last * i / (SampleWindows - 1)
		if _, err := f.ReadAt(d.buf, off); err != nil {
			return fmt.Errorf("%s at %d: %w", rel, off, err)
		}
		d.h.Write(d.buf)
	}
	return nil
}

func (d *modelDigester) field(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	d.h.Write(n[:])
	d.h.Write(b)
}
