package clip

// GPT-2/CLIP byte-level BPE works on strings where every byte is one
// printable rune: printable Latin-1 bytes stand for themselves, the others
// (controls, space, soft hyphen, ...) are shifted to U+0100 and up. The
// order below is also the order of the first 256 vocabulary ids.

// byteRunes lists the rune of every byte in vocabulary order: the printable
// bytes first, then the remaining bytes in byte order.
func byteRunes() (order [256]byte, runes [256]rune) {
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			order[n], runes[b] = byte(b), rune(b)
			n++
		}
	}
	shifted := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order[n], runes[b] = byte(b), rune(256+shifted)
			n++
			shifted++
		}
	}
	return order, runes
}

// byteTables are the encode and decode directions of byteRunes.
type byteTables struct {
	enc [256]string   // byte -> its one-rune string
	dec map[rune]byte // rune -> byte
}

func newByteTables() *byteTables {
	_, runes := byteRunes()
	t := &byteTables{dec: make(map[rune]byte, 256)}
	for b, r := range runes {
		t.enc[b] = string(r)
		t.dec[r] = byte(b)
	}
	return t
}

// baseSymbols returns the 256 byte symbols in vocabulary order.
func baseSymbols() []string {
	order, runes := byteRunes()
	syms := make([]string, 256)
	for i, b := range order {
		syms[i] = string(runes[b])
	}
	return syms
}
