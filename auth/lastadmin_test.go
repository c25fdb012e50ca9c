package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// storeOnly hides a store's AdminRevoker method: the in-process path.
type storeOnly struct{ Store }

func TestRevokeKeyKeepingAdmin(t *testing.T) {
	for name, wrap := range map[string]func(Store) Store{
		"atomic in the store": func(s Store) Store { return s },
		"in-process fallback": func(s Store) Store { return storeOnly{s} },
	} {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			g, err := New(wrap(openTestStore(t)), Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			testLastAdminRule(t, g, clock)
		})
	}
}

func testLastAdminRule(t *testing.T, g *Gate, clock *fakeClock) {
	ctx := context.Background()
	_, first := mustCreate(t, g, KeySpec{Name: "admin1", Admin: true})
	_, user := mustCreate(t, g, KeySpec{Name: "user"})
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoking the only admin: %v, want ErrLastAdmin", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, user.ID); err != nil {
		t.Fatalf("revoking a user key: %v", err)
	}
	// An expired admin key is no admin left.
	_, expired := mustCreate(t, g, KeySpec{Name: "old-admin", Admin: true, ExpiresAt: clock.Now().Add(time.Minute)})
	clock.Advance(2 * time.Minute)
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoking the only active admin beside an expired one: %v, want ErrLastAdmin", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, expired.ID); err != nil {
		t.Fatalf("revoking an expired admin key: %v", err)
	}
	_, second := mustCreate(t, g, KeySpec{Name: "admin2", Admin: true})
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); err != nil {
		t.Fatalf("revoking one of two admins: %v", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); err != nil {
		t.Fatalf("revoking a revoked admin key again: %v", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, second.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoking the admin left: %v, want ErrLastAdmin", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, "key_missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown id: %v, want ErrKeyNotFound", err)
	}
	// A static admin key counts: the stored one may go; the static one is
	// never revoked here.
	if err := g.AddStaticKeys("ops:sk-static-admin-0123456789abcdef:admin"); err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, second.ID); err != nil {
		t.Fatalf("with a static admin: %v", err)
	}
	static := g.staticKeys()[0]
	if err := g.RevokeKeyKeepingAdmin(ctx, static.ID); !errors.Is(err, ErrStaticKey) {
		t.Fatalf("static key: %v, want ErrStaticKey", err)
	}
	if k, err := g.store.Key(ctx, second.ID); err != nil || !k.Revoked() {
		t.Fatalf("second admin after revoke: %+v, %v", k, err)
	}
}

// revokeRace has gates a and b (independent processes on one store) each
// revoke one of the last two admin keys at once, rounds times: exactly one
// may succeed each round, the other must get ErrLastAdmin.
func revokeRace(t *testing.T, a, b *Gate, rounds int) {
	t.Helper()
	ctx := context.Background()
	_, survivor := mustCreate(t, a, KeySpec{Name: "admin-0", Admin: true})
	for round := range rounds {
		_, fresh := mustCreate(t, b, KeySpec{Name: "admin-new", Admin: true})
		var (
			start = make(chan struct{})
			wg    sync.WaitGroup
			errs  [2]error
		)
		for i, job := range []struct {
			g  *Gate
			id string
		}{{a, survivor.ID}, {b, fresh.ID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = job.g.RevokeKeyKeepingAdmin(ctx, job.id)
			}()
		}
		close(start)
		wg.Wait()
		switch {
		case errs[0] == nil && errors.Is(errs[1], ErrLastAdmin):
			survivor = fresh
		case errs[1] == nil && errors.Is(errs[0], ErrLastAdmin):
		default:
			t.Fatalf("round %d: revokes answered %v and %v, want exactly one ErrLastAdmin", round, errs[0], errs[1])
		}
		n := 0
		keys, err := a.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.Admin && k.Active(time.Now()) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d active admin keys, want 1", round, n)
		}
	}
}

func TestLastAdminAcrossSQLiteProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), DBName)
	var gates [2]*Gate
	for i := range gates {
		s, err := OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if gates[i], err = New(s, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	revokeRace(t, gates[0], gates[1], 40)
}

func TestLastAdminAcrossPostgresGateways(t *testing.T) {
	dsn := newTestPostgresDB(t)
	var gates [2]*Gate
	for i := range gates {
		g, err := New(openPostgresDSN(t, dsn), Options{})
		if err != nil {
			t.Fatal(err)
		}
		gates[i] = g
	}
	revokeRace(t, gates[0], gates[1], 40)
}
