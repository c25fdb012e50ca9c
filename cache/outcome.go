package cache

// Outcome says how Do produced its entry.
type Outcome int

const (
	// Bypass: the request was not cacheable (no seed and prompt caching
	// off, or no cache); compute ran for this caller alone.
	Bypass Outcome = iota
	// Miss: this caller's compute produced the entry (and stored it).
	Miss
	// Hit: the entry came from the store.
	Hit
	// Coalesced: an identical request in flight computed the entry; this
	// caller waited for it and spent no compute of its own.
	Coalesced
)

func (o Outcome) String() string {
	switch o {
	case Bypass:
		return "bypass"
	case Miss:
		return "miss"
	case Hit:
		return "hit"
	case Coalesced:
		return "coalesced"
	}
	return "unknown"
}

// Cached reports whether the caller got its entry without computing it:
// such responses are metered as cached, with no GPU time.
func (o Outcome) Cached() bool { return o == Hit || o == Coalesced }

// Header is the X-Cache response header value: HIT when no compute ran for
// this request, else MISS.
func (o Outcome) Header() string {
	if o.Cached() {
		return "HIT"
	}
	return "MISS"
}
