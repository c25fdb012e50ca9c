package cache

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Bounds of DefaultMaxBytes.
const (
	// DefaultMemoryShare: the cache takes 1/8 of the machine's (or the
	// container's) memory, leaving the rest to models, ONNX Runtime and
	// the URL image store.
	DefaultMemoryShare = 8
	MinDefaultMaxBytes = 64 << 20
	MaxDefaultMaxBytes = 8 << 30
	// FallbackMaxBytes is used when the memory size cannot be read.
	FallbackMaxBytes = 512 << 20
)

// DefaultMaxBytes is a sensible bound for the Memory store: 1/8 of physical
// memory (MemTotal in /proc/meminfo, or the cgroup v2 limit when that is
// lower, as in a container), clamped to 64 MiB .. 8 GiB. Where neither can
// be read it is 512 MiB.
func DefaultMaxBytes() int64 {
	total := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		total = parseMemTotal(b)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if limit := parseCgroupMax(b); limit > 0 && (total <= 0 || limit < total) {
			total = limit
		}
	}
	return shareOf(total)
}

// shareOf is DefaultMaxBytes for a memory size (<= 0: unknown).
func shareOf(total int64) int64 {
	if total <= 0 {
		return FallbackMaxBytes
	}
	return min(max(total/DefaultMemoryShare, MinDefaultMaxBytes), MaxDefaultMaxBytes)
}

// parseMemTotal reads "MemTotal: N kB" out of /proc/meminfo; 0 if absent.
func parseMemTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "MemTotal" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 || kb > (1<<53) {
			return 0
		}
		return kb << 10
	}
	return 0
}

// parseCgroupMax reads cgroup v2's memory.max: a byte count, or "max" for
// none (0).
func parseCgroupMax(b []byte) int64 {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
