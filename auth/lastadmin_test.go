package auth

import (
	"context"
	"errors"
	"testing"
)

func TestRevokeKeyKeepingAdmin(t *testing.T) {
	ctx := context.Background()
	store, err := OpenDataDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := g.CreateKey(ctx, KeySpec{Name: "admin1", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	_, user, err := g.CreateKey(ctx, KeySpec{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoking the only admin: %v, want ErrLastAdmin", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, user.ID); err != nil {
		t.Fatalf("revoking a user key: %v", err)
	}
	_, second, err := g.CreateKey(ctx, KeySpec{Name: "admin2", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, first.ID); err != nil {
		t.Fatalf("revoking one of two admins: %v", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, second.ID); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoking the admin left: %v, want ErrLastAdmin", err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, "key_missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown id: %v, want ErrKeyNotFound", err)
	}
	// A static admin key counts: the stored one may go.
	if err := g.AddStaticKeys("ops:sk-static-admin-0123456789abcdef:admin"); err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeKeyKeepingAdmin(ctx, second.ID); err != nil {
		t.Fatalf("with a static admin: %v", err)
	}
}
