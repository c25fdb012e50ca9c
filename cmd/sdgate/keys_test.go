package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/auth"
)

// runKeysCLI runs "sdgate keys args..." through run with env as the
// environment and returns stdout and stderr.
func runKeysCLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), append([]string{"keys"}, args...), getenv, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func mustRunKeys(t *testing.T, env map[string]string, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := runKeysCLI(t, env, args...)
	if err != nil {
		t.Fatalf("keys %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

var secretLine = regexp.MustCompile(`^sk-[0-9A-Za-z]{43}\n$`)

func TestKeysCreateAndList(t *testing.T) {
	data := t.TempDir()
	// serve's SDGATE_MODELS must not become the key's allowed models.
	env := map[string]string{"SDGATE_DATA": data, "SDGATE_MODELS": "./models", "SDGATE_NAME": "from-env"}
	plain, errOut := mustRunKeys(t, env, "create", "--name", "plain")
	if !secretLine.MatchString(plain) {
		t.Fatalf("create printed %q on stdout, want only the key", plain)
	}
	if !strings.Contains(errOut, "created key_") {
		t.Errorf("stderr %q does not name the new key", errOut)
	}
	limited, _ := mustRunKeys(t, nil, "create", "--data", data, "--name", "limited", "--rpm", "60", "--ipm", "10",
		"--images-per-day", "100", "--quota", "1000", "--models", "dall-e-2, sd15-*", "--admin", "--expires", "2099-01-02")
	secrets := []string{strings.TrimSpace(plain), strings.TrimSpace(limited)}

	out, _ := mustRunKeys(t, env, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("list printed %d lines, want a header and 2 keys:\n%s", len(lines), out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, s[5:len(s)-3]) {
			t.Errorf("list shows a secret:\n%s", out)
		}
	}
	cases := []struct {
		line int
		want []string
	}{
		{1, []string{"plain", auth.Mask(secrets[0]), "none", " all", " no "}},
		{2, []string{"limited", auth.Mask(secrets[1]), "rpm=60 ipm=10 per-day=100 quota=1000",
			"dall-e-2,sd15-*", " yes ", "2099-01-02 00:00"}},
	}
	for _, c := range cases {
		for _, w := range c.want {
			if !strings.Contains(lines[c.line], w) {
				t.Errorf("list line %d %q lacks %q", c.line, lines[c.line], w)
			}
		}
	}

	// The CLI's keys are the server's: a Gate on the same store lets them in.
	store, err := auth.OpenDataDir(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := auth.New(store, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := g.Authenticate(context.Background(), "Bearer "+secrets[1], "")
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Limits{RequestsPerMinute: 60, ImagesPerMinute: 10, ImagesPerDay: 100, ImageQuota: 1000}
	if k.Name != "limited" || !k.Admin || k.Limits != want || len(k.Models) != 2 {
		t.Errorf("stored key = %+v", k)
	}
}

func TestKeysRevoke(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"SDGATE_DATA": data}
	secret, _ := mustRunKeys(t, env, "create", "--name", "doomed")
	secret = strings.TrimSpace(secret)
	store, err := auth.OpenDataDir(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	k, err := store.KeyByHash(context.Background(), auth.HashSecret(secret))
	store.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, _ := mustRunKeys(t, nil, "revoke", k.ID, "--data", data) // ID before the flags
	if !strings.Contains(out, "revoked "+k.ID+" (doomed)") {
		t.Errorf("revoke printed %q", out)
	}
	list, _ := mustRunKeys(t, env, "list")
	if !regexp.MustCompile(k.ID + `.*\d{4}-\d\d-\d\d \d\d:\d\d\s+no`).MatchString(list) {
		t.Errorf("list does not show the revocation time:\n%s", list)
	}

	static := "ci:sk-" + strings.Repeat("s", 40)
	staticKeys, err := auth.ParseStaticKeys(static, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr error
		want    string
	}{
		{"unknown id", env, []string{"revoke", "key_nope"}, auth.ErrKeyNotFound, ""},
		{"no id", env, []string{"revoke"}, nil, "which key"},
		{"two ids", env, []string{"revoke", "a", "b"}, nil, `unexpected argument "b"`},
		{"static key", map[string]string{"SDGATE_DATA": data, "SDGATE_API_KEYS": static},
			[]string{"revoke", staticKeys[0].ID}, auth.ErrStaticKey, ""},
		{"no store", nil, []string{"revoke", k.ID, "--data", filepath.Join(data, "absent")}, nil, "no key store"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runKeysCLI(t, c.env, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(data, "absent")); !os.IsNotExist(err) {
		t.Errorf("revoke on a missing store created %s", filepath.Join(data, "absent"))
	}
}

func TestKeysListStaticAndEmpty(t *testing.T) {
	data := filepath.Join(t.TempDir(), "none")
	out, errOut := mustRunKeys(t, map[string]string{"SDGATE_DATA": data}, "list")
	if out != "" || !strings.Contains(errOut, "no keys") {
		t.Errorf("empty list: stdout %q, stderr %q", out, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Error("list created the data directory")
	}
	secret := "sk-" + strings.Repeat("e", 40)
	out, _ = mustRunKeys(t, map[string]string{"SDGATE_DATA": data, "SDGATE_API_KEYS": "ops:" + secret + ":admin"}, "list")
	if !strings.Contains(out, "ops") || !strings.Contains(out, "SDGATE_API_KEYS") || strings.Contains(out, secret) {
		t.Errorf("list with a static key:\n%s", out)
	}
}

func TestKeysUsage(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	env := map[string]string{"SDGATE_DATA": data}
	mustRunKeys(t, env, "create", "--name", "alice")
	mustRunKeys(t, env, "create", "--name", "bob")
	store, err := auth.OpenDataDir(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := keys[0], keys[1]
	old := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	now := time.Now().UTC()
	err = store.RecordUsage(ctx,
		auth.UsageRecord{KeyID: alice.ID, RequestID: "a1", At: now, Images: 2, Pixels: 2 * 1024 * 1024, Steps: 40, GPUSeconds: 3, Status: 200},
		auth.UsageRecord{KeyID: alice.ID, RequestID: "a2", At: now, Images: 0, Status: 500},
		auth.UsageRecord{KeyID: bob.ID, RequestID: "b1", At: now, Images: 1, Cached: true, Status: 200},
		auth.UsageRecord{KeyID: bob.ID, RequestID: "b0", At: old, Images: 7, Status: 200},
	)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		args       []string
		want, not  []string
		totalImage string
	}{
		{"all keys, last 30 days", []string{"usage"}, []string{alice.ID, "alice", bob.ID, "bob"}, []string{"2026-01-05"}, "3"},
		{"one key", []string{"usage", alice.ID}, []string{"alice"}, []string{"bob"}, "2"},
		{"since a date", []string{"usage", "--since", "2026-01-01", bob.ID}, []string{"2026-01-05", "bob"}, []string{"alice"}, "8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _ := mustRunKeys(t, env, c.args...)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("usage lacks %q:\n%s", w, out)
				}
			}
			for _, n := range c.not {
				if strings.Contains(out, n) {
					t.Errorf("usage shows %q:\n%s", n, out)
				}
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			total := strings.Fields(lines[len(lines)-1])
			// total, requests, failed, cached, images, ...
			if total[0] != "total" || total[4] != c.totalImage {
				t.Errorf("total line %q, want %s images", lines[len(lines)-1], c.totalImage)
			}
		})
	}
	for _, args := range [][]string{{"usage", "key_nope"}, {"usage", "--since", "yesterday"}} {
		if _, _, err := runKeysCLI(t, env, args...); err == nil {
			t.Errorf("keys %s: no error", strings.Join(args, " "))
		}
	}
}

func TestKeysErrors(t *testing.T) {
	data := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"rotate"}, "unknown command"},
		{"create without name", []string{"create", "--data", data}, "--name is required"},
		{"negative limit", []string{"create", "--data", data, "--name", "x", "--rpm", "-1"}, "must not be negative"},
		{"expiry in the past", []string{"create", "--data", data, "--name", "x", "--expires", "2001-01-01"}, "not in the future"},
		{"bad expiry", []string{"create", "--data", data, "--name", "x", "--expires", "soon"}, "--expires"},
		{"list takes no argument", []string{"list", "extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runKeysCLI(t, map[string]string{"SDGATE_DATA": data}, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
			if out != "" {
				t.Errorf("stdout %q on error", out)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		sign int
		want time.Time
		ok   bool
	}{
		{"24h", -1, now.Add(-24 * time.Hour), true},
		{"30d", +1, now.Add(30 * 24 * time.Hour), true},
		{"2026-11-01", -1, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-11-01T08:30:00+02:00", -1, time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), true},
		{"-5h", -1, time.Time{}, false},
		{"xd", -1, time.Time{}, false},
		{"tomorrow", +1, time.Time{}, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseWhen(c.in, now, c.sign)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok %v", err, c.ok)
			}
			if c.ok && !got.Equal(c.want) {
				t.Errorf("parseWhen(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}
