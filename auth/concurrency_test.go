package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestQuotaRace has many goroutines race for the last images of a quota:
// exactly the quota may pass, never one image more.
func TestQuotaRace(t *testing.T) {
	const quota, racers = 10, 200
	cases := []struct {
		name   string
		limits Limits
		hold   bool // keep admissions open until everyone tried (reservations)
	}{
		{"total quota, held", Limits{ImageQuota: quota}, true},
		{"daily quota, held", Limits{ImagesPerDay: quota}, true},
		{"total quota, admit and finish", Limits{ImageQuota: quota}, false},
		{"daily quota, admit and finish", Limits{ImagesPerDay: quota}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, s, _ := newTestGate(t)
			_, k := mustCreate(t, g, KeySpec{Limits: c.limits})
			// 3 images were used before: the race is for the last 7.
			finish(t, admit(t, g, k, 3), 3)

			ctx := context.Background()
			var (
				admitted, refused atomic.Int64
				start             = make(chan struct{})
				tried, wg         sync.WaitGroup
				held              = make(chan *Admission, racers)
			)
			tried.Add(racers)
			for range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					a, err := g.Admit(ctx, k, "m", 1)
					tried.Done()
					switch {
					case errors.Is(err, ErrQuotaExceeded):
						refused.Add(1)
						return
					case err != nil:
						t.Errorf("Admit: %v", err)
						return
					}
					admitted.Add(1)
					if c.hold {
						held <- a
						return
					}
					if err := a.Finish(ctx, Usage{Images: 1, Status: 200}); err != nil {
						t.Errorf("Finish: %v", err)
					}
				}()
			}
			close(start)
			tried.Wait()
			wg.Wait()
			close(held)
			for a := range held {
				if err := a.Finish(ctx, Usage{Images: 1, Status: 200}); err != nil {
					t.Errorf("Finish: %v", err)
				}
			}
			if got := admitted.Load(); got != quota-3 {
				t.Errorf("%d admitted, want exactly %d", got, quota-3)
			}
			if got := refused.Load(); got != racers-(quota-3) {
				t.Errorf("%d refused, want %d", got, racers-(quota-3))
			}
			_, total, err := s.UsageTotals(ctx, k.ID, dayOf(testStart))
			if err != nil || total != quota {
				t.Errorf("stored total = %d, %v; want %d", total, err, quota)
			}
		})
	}
}

// TestQuotaRaceMixedSizes: requests of 1 to 4 images and some failures race;
// the images finished never exceed the quota, and a failed request's images
// go back to the others.
func TestQuotaRaceMixedSizes(t *testing.T) {
	const quota, racers = 50, 200
	g, s, _ := newTestGate(t)
	_, k := mustCreate(t, g, KeySpec{Limits: Limits{ImageQuota: quota}})
	ctx := context.Background()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n := 1 + i%4
			a, err := g.Admit(ctx, k, "m", n)
			if errors.Is(err, ErrQuotaExceeded) {
				return
			}
			if err != nil {
				t.Errorf("Admit: %v", err)
				return
			}
			made := n
			if i%5 == 0 {
				made = 0 // failed: nothing made
			}
			if err := a.Finish(ctx, Usage{Images: made, Status: 200}); err != nil {
				t.Errorf("Finish: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	_, total, err := s.UsageTotals(ctx, k.ID, dayOf(testStart))
	if err != nil {
		t.Fatal(err)
	}
	if total > quota {
		t.Errorf("%d images finished, quota %d", total, quota)
	}
	// Whatever is left must be grantable: ask for exactly the rest.
	if rest := quota - total; rest > 0 {
		finish(t, admit(t, g, k, int(rest)), int(rest))
	}
	if _, err := g.Admit(ctx, k, "m", 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Errorf("past the quota: err = %v, want ErrQuotaExceeded", err)
	}
}
