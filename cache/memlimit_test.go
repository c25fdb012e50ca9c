package cache

import "testing"

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"typical", "MemTotal:       24568732 kB\nMemFree:         1000 kB\n", 24568732 << 10},
		{"not first", "MemFree: 1 kB\nMemTotal: 2048 kB\n", 2048 << 10},
		{"absent", "MemFree: 1 kB\n", 0},
		{"no unit", "MemTotal: 2048\n", 0},
		{"garbage", "MemTotal: lots kB\n", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseMemTotal([]byte(tt.in)); got != tt.want {
				t.Errorf("parseMemTotal = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseCgroupMax(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"max\n", 0},
		{"4294967296\n", 4 << 30},
		{"", 0},
		{"-1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseCgroupMax([]byte(tt.in)); got != tt.want {
				t.Errorf("parseCgroupMax(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestShareOf(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		want  int64
	}{
		{"unknown", 0, FallbackMaxBytes},
		{"an eighth", 24 << 30, 3 << 30},
		{"floor", 256 << 20, MinDefaultMaxBytes},
		{"cap", 512 << 30, MaxDefaultMaxBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shareOf(tt.total); got != tt.want {
				t.Errorf("shareOf(%d) = %d, want %d", tt.total, got, tt.want)
			}
		})
	}
	if got := DefaultMaxBytes(); got < MinDefaultMaxBytes || got > MaxDefaultMaxBytes {
		t.Errorf("DefaultMaxBytes() = %d, outside the documented range", got)
	}
}
