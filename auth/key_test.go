package auth

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	chars := map[rune]bool{}
	for range 2000 {
		s := newSecret()
		if !strings.HasPrefix(s, SecretPrefix) || len(s) != len(SecretPrefix)+secretChars {
			t.Fatalf("secret %q: want %q and %d characters", s, SecretPrefix, secretChars)
		}
		for _, r := range s[len(SecretPrefix):] {
			if !strings.ContainsRune(base62, r) {
				t.Fatalf("secret %q has %q outside base62", s, r)
			}
			chars[r] = true
		}
		if seen[s] {
			t.Fatalf("secret %q drawn twice", s)
		}
		seen[s] = true
	}
	// 2000*43 draws miss one of 62 characters with odds below 1e-600.
	if len(chars) != len(base62) {
		t.Errorf("%d distinct characters drawn, want all %d", len(chars), len(base62))
	}
}

func TestHashSecret(t *testing.T) {
	want := sha256.Sum256([]byte("sk-test"))
	if got := HashSecret("sk-test"); !bytes.Equal(got, want[:]) {
		t.Errorf("HashSecret = %x, want %x", got, want)
	}
	if bytes.Equal(HashSecret("sk-a"), HashSecret("sk-b")) {
		t.Error("different secrets hash alike")
	}
	cases := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"equal", HashSecret("x"), HashSecret("x"), true},
		{"different", HashSecret("x"), HashSecret("y"), false},
		{"short stored hash", HashSecret("x")[:8], HashSecret("x")[:8], false},
		{"empty", nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := hashesEqual(c.a, c.b); got != c.want {
				t.Errorf("hashesEqual = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{"sk-abcdefghijklmnopqrstuvwxyz", "sk-ab***xyz"},
		{"sk-abcdefghijklmn", "sk-ab***lmn"},
		{"sk-abcdefghijklm", "sk-ab***klm"}, // 16 bytes: half of them shown
		{"sk-abcdefghijkl", "***"},          // 15: too short to show 8
		{"short", "***"},
		{"", "***"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := Mask(c.in); got != c.want {
				t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
	secret := newSecret()
	if m := Mask(secret); strings.Contains(m, secret[5:len(secret)-3]) || len(m) != 11 {
		t.Errorf("Mask(%q) = %q shows too much", secret, m)
	}
}

func TestCanUse(t *testing.T) {
	cases := []struct {
		name   string
		models []string
		model  string
		want   bool
	}{
		{"no list allows all", nil, "dall-e-3", true},
		{"listed", []string{"dall-e-2", "dall-e-3"}, "dall-e-3", true},
		{"not listed", []string{"dall-e-2"}, "dall-e-3", false},
		{"pattern", []string{"sd15-*"}, "sd15-lcm", true},
		{"pattern miss", []string{"sd15-*"}, "sdxl", false},
		{"case matters", []string{"dall-e-2"}, "DALL-E-2", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := &Key{Models: c.models}
			if got := k.CanUse(c.model); got != c.want {
				t.Errorf("CanUse(%q) with %q = %v, want %v", c.model, c.models, got, c.want)
			}
		})
	}
}

func TestKeySpecValidate(t *testing.T) {
	now := testStart
	cases := []struct {
		name string
		spec KeySpec
		ok   bool
	}{
		{"minimal", KeySpec{Name: "ci"}, true},
		{"everything", KeySpec{Name: "ci", Limits: Limits{1, 2, 3, 4}, Models: []string{"a", "b*"},
			Admin: true, ExpiresAt: now.Add(time.Hour)}, true},
		{"no name", KeySpec{}, false},
		{"blank name", KeySpec{Name: "  "}, false},
		{"long name", KeySpec{Name: strings.Repeat("n", 101)}, false},
		{"negative rpm", KeySpec{Name: "x", Limits: Limits{RequestsPerMinute: -1}}, false},
		{"negative quota", KeySpec{Name: "x", Limits: Limits{ImageQuota: -1}}, false},
		{"expired already", KeySpec{Name: "x", ExpiresAt: now}, false},
		{"empty model", KeySpec{Name: "x", Models: []string{""}}, false},
		{"bad pattern", KeySpec{Name: "x", Models: []string{"sd["}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.validate(now)
			if (err == nil) != c.ok {
				t.Fatalf("validate = %v, want ok %v", err, c.ok)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer sk-abc", "sk-abc", true},
		{"bearer sk-abc", "sk-abc", true},
		{"BEARER   sk-abc  ", "sk-abc", true},
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"sk-abc", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := bearerToken(c.in)
			if got != c.want || ok != c.ok {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}
