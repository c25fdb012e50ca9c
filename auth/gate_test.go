package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	g, _, clock := newTestGate(t)
	good, goodKey := mustCreate(t, g, KeySpec{Name: "good"})
	revoked, revokedKey := mustCreate(t, g, KeySpec{Name: "revoked"})
	if err := g.RevokeKey(ctx, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	expiring, _ := mustCreate(t, g, KeySpec{Name: "expiring", ExpiresAt: testStart.Add(time.Hour)})
	clock.Advance(2 * time.Hour)
	unknown := newSecret()

	cases := []struct {
		name          string
		authorization string
		apiKey        string
		wantID        string
		wantErr       error
	}{
		{"bearer", "Bearer " + good, "", goodKey.ID, nil},
		{"bearer lower case", "bearer " + good, "", goodKey.ID, nil},
		{"api-key header", "", good, goodKey.ID, nil},
		{"bearer wins over api-key", "Bearer " + good, unknown, goodKey.ID, nil},
		{"basic auth falls back to api-key", "Basic dXNlcjpwYXNz", good, goodKey.ID, nil},
		{"missing", "", "", "", ErrMissingKey},
		{"empty bearer", "Bearer ", "", "", ErrMissingKey},
		{"basic only", "Basic dXNlcjpwYXNz", "", "", ErrMissingKey},
		{"unknown", "Bearer " + unknown, "", "", ErrInvalidKey},
		{"one character off", "Bearer " + good[:len(good)-1] + flip(good[len(good)-1]), "", "", ErrInvalidKey},
		{"absurdly long", "Bearer sk-" + strings.Repeat("a", 1000), "", "", ErrInvalidKey},
		{"revoked", "Bearer " + revoked, "", "", ErrRevoked},
		{"expired", "Bearer " + expiring, "", "", ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := g.Authenticate(ctx, c.authorization, c.apiKey)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				var ke *KeyError
				if !errors.As(err, &ke) {
					t.Fatalf("err %T is not a *KeyError", err)
				}
				for _, secret := range []string{good, revoked, expiring, unknown} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("message %q contains a whole key", err.Error())
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if k.ID != c.wantID {
				t.Errorf("key %s, want %s", k.ID, c.wantID)
			}
		})
	}
}

func flip(b byte) string {
	if b == 'a' {
		return "b"
	}
	return "a"
}

func TestKeyErrorMessages(t *testing.T) {
	secret := "sk-abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		err  error
		want string
	}{
		{&KeyError{Reason: ErrMissingKey}, "You didn't provide an API key."},
		{&KeyError{Reason: ErrInvalidKey, Masked: Mask(secret)}, "Incorrect API key provided: sk-ab***xyz."},
		{&KeyError{Reason: ErrRevoked, Masked: Mask(secret)}, "The API key sk-ab***xyz has been revoked."},
		{&KeyError{Reason: ErrExpired, Masked: Mask(secret), ExpiredAt: testStart}, "expired at 2026-11-03T10:00:00Z"},
		{&ModelError{Model: "dall-e-3"}, "The model `dall-e-3` does not exist or you do not have access to it."},
		{&RateLimitError{Limit: LimitImages, Max: 10, Used: 9, Requested: 2, RetryAfter: 5500 * time.Millisecond},
			"Rate limit reached for images per min (IPM): Limit 10, Used 9, Requested 2. Please try again in 5.5s."},
		{&RateLimitError{Limit: LimitImages, Max: 5, Requested: 10, TooLarge: true}, "Request too large for images per min (IPM): Limit 5, Requested 10."},
		{&RateLimitError{Limit: LimitRequests, Max: 3, Used: 3, Requested: 1, RetryAfter: 20 * time.Second}, "requests per min (RPM): Limit 3, Used 3"},
		{&QuotaError{Quota: QuotaDaily, Limit: 10, Used: 10, Requested: 1, ResetAt: testStart}, "You exceeded your current quota of 10 images per day"},
		{&QuotaError{Quota: QuotaTotal, Limit: 10, Used: 9, Requested: 2}, "quota of 10 total images (used 9, requested 2); ask"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := c.err.Error(); !strings.Contains(got, c.want) {
				t.Errorf("message %q does not contain %q", got, c.want)
			}
		})
	}
	if !errors.Is(&QuotaError{}, ErrQuotaExceeded) || !errors.Is(&ModelError{}, ErrModelNotAllowed) {
		t.Error("QuotaError / ModelError do not wrap their sentinels")
	}
}

func TestStaticKeys(t *testing.T) {
	ctx := context.Background()
	secretA := "sk-" + strings.Repeat("A", 40)
	secretB := "sk-" + strings.Repeat("B", 40)
	secretC := "plain-long-secret-of-30-chars!"

	t.Run("parse", func(t *testing.T) {
		cases := []struct {
			spec      string
			wantNames []string
			wantAdmin []bool
			wantErr   bool
		}{
			{"", nil, nil, false},
			{secretA, []string{"env-1"}, []bool{false}, false},
			{"ci:" + secretA + ", ops:" + secretB + ":admin", []string{"ci", "ops"}, []bool{false, true}, false},
			{secretA + "\n" + secretC + ":admin", []string{"env-1", "env-2"}, []bool{false, true}, false},
			{"ci:tiny1", nil, nil, true},
			{":" + secretA, nil, nil, true},
			{"a:b:" + secretA, nil, nil, true},
		}
		for _, c := range cases {
			t.Run(c.spec, func(t *testing.T) {
				keys, err := ParseStaticKeys(c.spec, testStart)
				if (err != nil) != c.wantErr {
					t.Fatalf("err = %v, want error %v", err, c.wantErr)
				}
				if err != nil {
					for _, s := range []string{secretA, "tiny1"} {
						if strings.Contains(err.Error(), s) {
							t.Errorf("error %q repeats the secret", err)
						}
					}
					return
				}
				if len(keys) != len(c.wantNames) {
					t.Fatalf("%d keys, want %d", len(keys), len(c.wantNames))
				}
				for i, k := range keys {
					if k.Name != c.wantNames[i] || k.Admin != c.wantAdmin[i] || !k.Static || !strings.HasPrefix(k.ID, "env_") {
						t.Errorf("key %d = %+v, want name %s admin %v", i, k, c.wantNames[i], c.wantAdmin[i])
					}
				}
			})
		}
	})

	g, _, _ := newTestGate(t)
	if err := g.AddStaticKeys("ci:" + secretA + ",ops:" + secretB + ":admin"); err != nil {
		t.Fatal(err)
	}
	if err := g.AddStaticKeys("again:" + secretA); err == nil {
		t.Error("the same static key was added twice")
	}
	_, stored := mustCreate(t, g, KeySpec{Name: "stored"})

	k, err := g.Authenticate(ctx, "Bearer "+secretB, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "ops" || !k.Admin || !k.Static {
		t.Errorf("static key = %+v", k)
	}
	again, _ := ParseStaticKeys(secretB, testStart)
	if again[0].ID != k.ID {
		t.Errorf("static id not stable: %s then %s", k.ID, again[0].ID)
	}
	if err := g.RevokeKey(ctx, k.ID); !errors.Is(err, ErrStaticKey) {
		t.Errorf("RevokeKey(static) = %v, want ErrStaticKey", err)
	}
	keys, err := g.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if got := strings.Join(names, ","); got != "ci,ops,stored" {
		t.Errorf("ListKeys names = %s, want ci,ops,stored", got)
	}
	n, err := g.CountKeys(ctx)
	if err != nil || n != 3 {
		t.Errorf("CountKeys = %d, %v; want 3", n, err)
	}
	if err := g.RevokeKey(ctx, stored.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := g.CountKeys(ctx); n != 2 {
		t.Errorf("CountKeys after revoking the stored key = %d, want 2", n)
	}
}

func TestUsagePermissions(t *testing.T) {
	ctx := context.Background()
	g, _, _ := newTestGate(t)
	_, user := mustCreate(t, g, KeySpec{Name: "user"})
	_, other := mustCreate(t, g, KeySpec{Name: "other"})
	_, admin := mustCreate(t, g, KeySpec{Name: "admin", Admin: true})
	for _, k := range []*Key{user, other, admin} {
		a, err := g.Admit(ctx, k, "m", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Finish(ctx, Usage{Images: 1, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		caller  *Key
		keyID   string
		wantIDs string
		wantErr error
	}{
		{"own by default", user, "", user.ID, nil},
		{"own by id", user, user.ID, user.ID, nil},
		{"another key", user, other.ID, "", ErrNotAdmin},
		{"all keys", user, AllKeys, "", ErrNotAdmin},
		{"admin: another key", admin, other.ID, other.ID, nil},
		{"admin: all", admin, AllKeys, "*", nil},
		{"no auth: all", nil, "", "*", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			days, err := g.Usage(ctx, c.caller, c.keyID, time.Time{})
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if c.wantIDs == "*" {
				if len(days) != 3 {
					t.Errorf("%d rows, want 3", len(days))
				}
				return
			}
			if len(days) != 1 || days[0].KeyID != c.wantIDs {
				t.Errorf("rows %+v, want one for %s", days, c.wantIDs)
			}
		})
	}
	if RequireAdmin(admin) != nil || !errors.Is(RequireAdmin(user), ErrNotAdmin) || !errors.Is(RequireAdmin(nil), ErrNotAdmin) {
		t.Error("RequireAdmin disagrees with the admin flag")
	}
}

// TestKeyCache: a key revoked by another process (straight in the store)
// stops working once the cache entry expires; Gate.RevokeKey acts at once.
func TestKeyCache(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name         string
		ttl          time.Duration
		stillWorks   bool // right after the store-side revocation
		revokeInGate bool
	}{
		{"default ttl", 0, true, false},
		{"cache off", -1, false, false},
		{"revoked through the gate", 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openTestStore(t)
			clock := newFakeClock(testStart)
			g, err := New(s, Options{Now: clock.Now, KeyCacheTTL: c.ttl})
			if err != nil {
				t.Fatal(err)
			}
			secret, k := mustCreate(t, g, KeySpec{})
			if _, err := g.Authenticate(ctx, "Bearer "+secret, ""); err != nil {
				t.Fatal(err)
			}
			if c.revokeInGate {
				err = g.RevokeKey(ctx, k.ID)
			} else {
				err = s.RevokeKey(ctx, k.ID, clock.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.Authenticate(ctx, "Bearer "+secret, "")
			if works := err == nil; works != c.stillWorks {
				t.Errorf("right after revocation: err = %v, want working %v", err, c.stillWorks)
			}
			clock.Advance(DefaultKeyCacheTTL)
			if _, err := g.Authenticate(ctx, "Bearer "+secret, ""); !errors.Is(err, ErrRevoked) {
				t.Errorf("after the ttl: err = %v, want ErrRevoked", err)
			}
		})
	}
}
