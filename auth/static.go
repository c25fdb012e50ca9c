package auth

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// minStaticSecret keeps guessable passwords out of SDGATE_API_KEYS.
const minStaticSecret = 20

// AddStaticKeys adds the keys of a SDGATE_API_KEYS value (format in the
// package documentation) to an in-memory layer checked before the store.
// Only hashes are kept. An entry that does not parse fails the whole call,
// and nothing is added.
func (g *Gate) AddStaticKeys(spec string) error {
	keys, err := ParseStaticKeys(spec, g.now())
	if err != nil {
		return err
	}
	g.staticMu.Lock()
	defer g.staticMu.Unlock()
	seen := map[string]bool{}
	for _, k := range keys {
		if _, dup := g.static[string(k.Hash)]; dup || seen[string(k.Hash)] {
			return fmt.Errorf("static keys: key %q given twice", k.Name)
		}
		seen[string(k.Hash)] = true
	}
	for _, k := range keys {
		g.static[string(k.Hash)] = k
	}
	return nil
}

// ParseStaticKeys parses a SDGATE_API_KEYS value into keys stamped with now
// (the CLI uses it to list them). Entries are [NAME:]SECRET[:admin],
// separated by commas or white space.
func ParseStaticKeys(spec string, now time.Time) ([]*Key, error) {
	fields := strings.FieldsFunc(spec, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	keys := make([]*Key, 0, len(fields))
	for i, f := range fields {
		k, err := parseStaticKey(f, i+1)
		if err != nil {
			return nil, fmt.Errorf("SDGATE_API_KEYS entry %d: %w", i+1, err)
		}
		k.CreatedAt = now.UTC().Truncate(time.Millisecond)
		keys = append(keys, k)
	}
	return keys, nil
}

func parseStaticKey(entry string, n int) (*Key, error) {
	parts := strings.Split(entry, ":")
	admin := false
	if len(parts) > 1 && parts[len(parts)-1] == "admin" {
		admin, parts = true, parts[:len(parts)-1]
	}
	var name, secret string
	switch len(parts) {
	case 1:
		name, secret = fmt.Sprintf("env-%d", n), parts[0]
	case 2:
		name, secret = parts[0], parts[1]
	default:
		return nil, fmt.Errorf("want [NAME:]SECRET[:admin], got %d ':'-separated parts", len(parts))
	}
	switch {
	case name == "":
		return nil, fmt.Errorf("empty name")
	case len(secret) < minStaticSecret:
		// The message never repeats the secret, not even masked.
		return nil, fmt.Errorf("key %q: secret shorter than %d characters (use `sdgate keys create` style keys)", name, minStaticSecret)
	case len(secret) > maxSecretLen:
		return nil, fmt.Errorf("key %q: secret longer than %d characters", name, maxSecretLen)
	}
	hash := HashSecret(secret)
	return &Key{ID: staticID(hash), Name: name, Hint: Mask(secret), Hash: hash, Admin: admin, Static: true}, nil
}

// staticID derives a stable id from the secret's hash, so usage of a static
// key adds up across restarts. Hashing again keeps the stored hash unexposed.
func staticID(hash []byte) string {
	id := sha256.Sum256(append([]byte("sdgate static key id\x00"), hash...))
	return "env_" + hex.EncodeToString(id[:6])
}

func (g *Gate) staticKey(hash []byte) *Key {
	g.staticMu.RLock()
	defer g.staticMu.RUnlock()
	k, ok := g.static[string(hash)]
	if !ok {
		return nil
	}
	c := *k // callers may not change the layer
	c.Hash, c.Models = slices.Clone(k.Hash), slices.Clone(k.Models)
	return &c
}

func (g *Gate) staticKeys() []Key {
	g.staticMu.RLock()
	defer g.staticMu.RUnlock()
	keys := make([]Key, 0, len(g.static))
	for _, k := range g.static {
		keys = append(keys, *k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return keys
}
