package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLastAdmin: revoking the key would leave no active admin key, and with
// it no way to administer keys over HTTP.
var ErrLastAdmin = errors.New("the last active admin key cannot be revoked")

// AdminRevoker is a Store that can revoke a key only while another active
// admin key is left, the check and the revoke one atomic step in the store:
// gateways sharing it cannot each revoke one of the last two admin keys.
// Both stores sdgate ships are AdminRevokers.
type AdminRevoker interface {
	// RevokeKeyKeepingAdmin revokes id at at unless it is an active admin
	// key (at at) and no other is, counting otherAdmins more held outside
	// the store (static keys): ErrLastAdmin then; ErrKeyNotFound for an
	// unknown id.
	RevokeKeyKeepingAdmin(ctx context.Context, id string, at time.Time, otherAdmins int) error
}

// RevokeKeyKeepingAdmin is RevokeKey for the HTTP admin endpoint: it
// refuses (ErrLastAdmin) to revoke the only active admin key, static admin
// keys counted. `sdgate keys revoke` on the host still can. On an
// AdminRevoker store the check and the revoke are one step for every
// process sharing it; on another store, within this process only.
func (g *Gate) RevokeKeyKeepingAdmin(ctx context.Context, id string) error {
	now := g.now()
	static := 0
	for _, k := range g.staticKeys() {
		if k.ID == id {
			return g.RevokeKey(ctx, id) // ErrStaticKey
		}
		if k.Admin && k.Active(now) {
			static++
		}
	}
	if ar, ok := g.store.(AdminRevoker); ok {
		if err := ar.RevokeKeyKeepingAdmin(ctx, id, now, static); err != nil {
			return err
		}
		g.cache.forget(id)
		return nil
	}
	g.revokeMu.Lock()
	defer g.revokeMu.Unlock()
	keys, err := g.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	var target *Key
	others := static
	for i := range keys {
		switch {
		case keys[i].ID == id:
			target = &keys[i]
		case keys[i].Admin && keys[i].Active(now):
			others++
		}
	}
	if target != nil {
		if err := keepsAdmin(target, now, others); err != nil {
			return err
		}
	}
	return g.RevokeKey(ctx, id)
}

// keepsAdmin is the last-admin rule every store applies: target may go
// unless it is an active admin key and others (active admin keys besides
// it) is 0.
func keepsAdmin(target *Key, now time.Time, others int) error {
	if target.Admin && target.Active(now) && others == 0 {
		return fmt.Errorf("revoke key %s: %w: create another admin key first", target.ID, ErrLastAdmin)
	}
	return nil
}

// adminTx is a store's open transaction as the atomic revoke uses it; the
// store decides how it locks, the rule is applied here.
type adminTx struct {
	// lock reads the key to revoke and counts the other active admin
	// keys, holding them so that no other revoke changes them before
	// commit.
	lock   func() (target *Key, others int, err error)
	revoke func() error
	commit func() error
}

// run applies the last-admin rule within tx; otherAdmins are held
// outside the store (static keys).
func (tx adminTx) run(id string, at time.Time, otherAdmins int) error {
	target, others, err := tx.lock()
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if err := keepsAdmin(target, at, others+otherAdmins); err != nil {
		return err
	}
	if err := tx.revoke(); err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if err := tx.commit(); err != nil {
		return fmt.Errorf("revoke key %s: commit: %w", id, err)
	}
	return nil
}

// activeAdminsWhere is the SQL condition, in both stores' dialects, of an
// active admin key at the time bound to the placeholder now.
func activeAdminsWhere(now string) string {
	return "admin AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > " + now + ")"
}
