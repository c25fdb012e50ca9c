package cache

import "time"

// Entry is one cached response: every image of it, already encoded, so the
// same bytes serve b64_json and url. Entries are shared between callers and
// must be treated as read-only once handed to the cache.
type Entry struct {
	Images [][]byte // encoded images, in response order
	// B64 is each image in base64, kept when a b64_json request computed
	// the entry, so b64_json hits copy bytes instead of encoding them;
	// nil otherwise. The Memory store keeps it (and counts it); the
	// Redis codec does not carry it.
	B64           [][]byte
	Seeds         []uint64 // the seed of each image; Seeds[0] is the request's seed
	ContentType   string   // of every image, e.g. image/png
	RevisedPrompt string   // the prompt as the pipeline used it
	Created       time.Time
	// Elapsed is what computing the entry took: what a hit saves. Stats
	// adds it up as Saved.
	Elapsed time.Duration
}

// entryOverhead approximates the memory an Entry costs besides its
// payloads: the struct, slice headers and the time value. The Memory store
// adds its own per-item overhead on top (see memoryItemOverhead).
const entryOverhead = 128

// sliceHeader is the size of one []byte header inside Images.
const sliceHeader = 24

// Size is the number of bytes the entry holds in memory, for byte bounds.
// Images count by capacity, since spare capacity is held too: hand the
// cache tight slices (bytes.Clone of an encoder's buffer).
func (e Entry) Size() int64 {
	n := int64(entryOverhead + len(e.ContentType) + len(e.RevisedPrompt) + 8*cap(e.Seeds))
	for _, img := range e.Images {
		n += sliceHeader + int64(cap(img))
	}
	for _, b := range e.B64 {
		n += sliceHeader + int64(cap(b))
	}
	return n
}
