package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/internal/testsvc"
)

// newKeysPostgres starts a PostgreSQL server for the test and returns the
// DSN of a fresh database on it.
func newKeysPostgres(t *testing.T) string {
	t.Helper()
	pg := testsvc.PostgresForTest(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE keys"); err != nil {
		t.Fatal(err)
	}
	return pg.DSN("keys")
}

// Every keys command works against the PostgreSQL store, named by flag or
// by SDGATE_POSTGRES, and what it writes is what a gateway reads.
func TestKeysPostgres(t *testing.T) {
	dsn := newKeysPostgres(t)
	data := t.TempDir() // must stay untouched: --postgres wins over --data
	secret, errOut := mustRunKeys(t, nil, "create", "--postgres", dsn, "--data", data, "--name", "shared", "--rpm", "60")
	if !secretLine.MatchString(secret) || !strings.Contains(errOut, "created key_") {
		t.Fatalf("create: stdout %q stderr %q", secret, errOut)
	}
	env := map[string]string{"SDGATE_POSTGRES": dsn}
	mustRunKeys(t, env, "create", "--name", "second")
	out, _ := mustRunKeys(t, env, "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(out, "shared") || !strings.Contains(out, "rpm=60") {
		t.Fatalf("list:\n%s", out)
	}
	id := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])[0]

	// A gateway on the same database authenticates the key and meters it.
	ctx := context.Background()
	store, err := auth.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := auth.New(store, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := gate.Authenticate(ctx, "Bearer "+strings.TrimSpace(secret), "")
	if err != nil || k.ID != id {
		t.Fatalf("gateway authenticate: %v %v, want key %s", k, err, id)
	}
	a, err := gate.Admit(ctx, k, "m", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, auth.Usage{RequestID: "req-1", Images: 2, Status: 200}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	usage, _ := mustRunKeys(t, env, "usage", id)
	if !strings.Contains(usage, "shared") || !strings.Contains(usage, "total") {
		t.Errorf("usage:\n%s", usage)
	}
	revoked, _ := mustRunKeys(t, env, "revoke", id)
	if !strings.Contains(revoked, "revoked "+id) {
		t.Errorf("revoke printed %q", revoked)
	}
	store, err = auth.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if k, err := store.Key(ctx, id); err != nil || !k.Revoked() {
		t.Errorf("after keys revoke the store says %+v, %v", k, err)
	}
	if _, _, err := runKeysCLI(t, env, "revoke", "key_missing"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
	if _, _, err := runKeysCLI(t, map[string]string{"SDGATE_POSTGRES": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}, "list"); err == nil {
		t.Error("list against an unreachable database succeeded")
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("--postgres wrote into --data: %v", entries)
	}
}
