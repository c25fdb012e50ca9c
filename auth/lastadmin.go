package auth

import (
	"context"
	"errors"
	"fmt"
)

// ErrLastAdmin: revoking the key would leave no active admin key, and with
// it no way to administer keys over HTTP.
var ErrLastAdmin = errors.New("the last active admin key cannot be revoked")

// RevokeKeyKeepingAdmin is RevokeKey for the HTTP admin endpoint: it
// refuses (ErrLastAdmin) to revoke the only active admin key, static admin
// keys counted. `sdgate keys revoke` on the host still can. The check and
// the revoke are one step within this process; gateways sharing a store
// could each revoke one of two last admins at the same instant.
func (g *Gate) RevokeKeyKeepingAdmin(ctx context.Context, id string) error {
	g.revokeMu.Lock()
	defer g.revokeMu.Unlock()
	keys, err := g.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	now := g.now()
	active := func(k *Key) bool { return k.Admin && !k.Revoked() && !k.Expired(now) }
	var target *Key
	admins := 0
	for i := range keys {
		if keys[i].ID == id {
			target = &keys[i]
		}
		if active(&keys[i]) {
			admins++
		}
	}
	if target != nil && active(target) && admins == 1 {
		return fmt.Errorf("revoke key %s: %w: create another admin key first", id, ErrLastAdmin)
	}
	return g.RevokeKey(ctx, id)
}
