package urlstore

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMemoryMatchesModel runs random puts, gets, clock moves and sweeps on
// Memory and on a plain list of what should be held (oldest first, evicted
// by bytes, expired by time), and compares what each holds after every
// step: the FIFO's skipped names and compaction never lose or keep an
// image they should not, and a sweep leaves no name older than the oldest
// live image.
func TestMemoryMatchesModel(t *testing.T) {
	type held struct {
		name    string
		size    int
		expires time.Time
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	const ttl, maxBytes = 10 * time.Second, 100
	s := NewMemory(ttl, maxBytes, clk.get)
	defer s.Close()
	var model []held
	var names []string // every name handed out, for gets of dead ones too
	expiry := map[string]time.Time{}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	modelBytes := func() (n int64) {
		for _, h := range model {
			n += int64(h.size)
		}
		return n
	}
	dropExpired := func(now time.Time) {
		for len(model) > 0 && !now.Before(model[0].expires) {
			model = model[1:]
		}
	}
	for step := range 5000 {
		switch op := rng.IntN(10); {
		case op < 4: // put one or two images
			datas := make([][]byte, 1+rng.IntN(2))
			for i := range datas {
				datas[i] = make([]byte, 1+rng.IntN(30))
			}
			got, expires, err := s.PutAll(ctx, datas, "image/png", "png")
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range got {
				model = append(model, held{name, len(datas[i]), expires})
			}
			names = append(names, got...)
			for _, name := range got {
				expiry[name] = expires
			}
			for modelBytes() > maxBytes && len(model) > len(datas) {
				model = model[1:]
			}
		case op < 7 && len(names) > 0: // get any name, live or not
			name := names[rng.IntN(len(names))]
			_, ok, _ := s.Get(ctx, name)
			want := -1
			for i, h := range model {
				if h.name == name && clk.get().Before(h.expires) {
					want = i
				}
			}
			if ok != (want >= 0) {
				t.Fatalf("step %d: Get(%s) found %v, want %v", step, name, ok, want >= 0)
			}
			for i, h := range model { // an expired image Get finds leaves at once
				if h.name == name && !clk.get().Before(h.expires) {
					model = append(model[:i:i], model[i+1:]...)
					break
				}
			}
		case op < 9:
			clk.set(clk.get().Add(time.Duration(rng.IntN(3000)) * time.Millisecond))
		default:
			s.sweep()
			dropExpired(clk.get())
			// After a sweep the FIFO starts at a live image: it holds no
			// name older than that, dead or alive.
			unexpired := 0
			for _, e := range expiry {
				if clk.get().Before(e) {
					unexpired++
				}
			}
			if kept := len(s.order) - s.head; kept > unexpired {
				t.Fatalf("step %d: the FIFO keeps %d names after a sweep, %d unexpired were handed out", step, kept, unexpired)
			}
		}
		if n, b := s.Stats(); n != len(model) || b != modelBytes() {
			t.Fatalf("step %d: store holds %d images, %d bytes; want %d, %d", step, n, b, len(model), modelBytes())
		}
	}
}
