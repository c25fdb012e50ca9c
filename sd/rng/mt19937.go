package rng

// The 32-bit Mersenne Twister exactly as std::mt19937 and PyTorch's
// at::mt19937 define it, so the raw draw stream equals PyTorch's.
const (
	mtStateSize  = 624
	mtShift      = 397
	mtMatrixA    = 0x9908b0df
	mtUpperMask  = 0x80000000
	mtLowerMask  = 0x7fffffff
	mtInitFactor = 1812433253
)

type mt19937 struct {
	state [mtStateSize]uint32
	next  int // index of the next state word to temper; mtStateSize means regenerate first
}

// seed fills the state the way PyTorch's init_with_uint32 does: only the
// low 32 bits of the 64-bit seed reach the engine.
func (m *mt19937) seed(seed uint64) {
	m.state[0] = uint32(seed)
	for i := 1; i < mtStateSize; i++ {
		prev := m.state[i-1]
		m.state[i] = mtInitFactor*(prev^(prev>>30)) + uint32(i)
	}
	m.next = mtStateSize
}

// regenerate advances all state words at once (the "twist").
func (m *mt19937) regenerate() {
	for i := range mtStateSize {
		mixed := m.state[i]&mtUpperMask | m.state[(i+1)%mtStateSize]&mtLowerMask
		word := m.state[(i+mtShift)%mtStateSize] ^ mixed>>1
		if mixed&1 != 0 {
			word ^= mtMatrixA
		}
		m.state[i] = word
	}
	m.next = 0
}

// uint32 returns the next tempered output.
func (m *mt19937) uint32() uint32 {
	if m.next >= mtStateSize {
		m.regenerate()
	}
	y := m.state[m.next]
	m.next++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}
