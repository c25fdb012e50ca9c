// Package authtest sets up the key store and Gate tests of other packages
// run against: the real SQLite store in the test's temp dir.
package authtest

import (
	"context"
	"testing"

	"github.com/sdgate/sdgate/auth"
)

// Gate is a Gate with opts over a fresh SQLite store, both closed when the
// test ends.
func Gate(t testing.TB, opts auth.Options) (*auth.Gate, *auth.SQLiteStore) {
	t.Helper()
	store, err := auth.OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	gate, err := auth.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return gate, store
}

// Key creates a key on gate and returns its secret and record.
func Key(t testing.TB, gate *auth.Gate, spec auth.KeySpec) (string, *auth.Key) {
	t.Helper()
	secret, key, err := gate.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return secret, key
}
