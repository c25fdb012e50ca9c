package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSQLiteKeys(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	spec := KeySpec{Name: "ci", Limits: Limits{RequestsPerMinute: 60, ImagesPerMinute: 30, ImagesPerDay: 500, ImageQuota: 10000},
		Models: []string{"dall-e-2", "sd15-*"}, Admin: true, ExpiresAt: time.Now().Add(24 * time.Hour)}
	secret, created, err := CreateKey(ctx, s, spec)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if got := created.Hint; got != Mask(secret) {
		t.Errorf("Hint = %q, want %q", got, Mask(secret))
	}

	t.Run("by hash", func(t *testing.T) {
		got, err := s.KeyByHash(ctx, HashSecret(secret))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("KeyByHash differs from created key (-want +got):\n%s", diff)
		}
	})
	t.Run("by id", func(t *testing.T) {
		got, err := s.Key(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("Key differs (-want +got):\n%s", diff)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := s.KeyByHash(ctx, HashSecret("sk-nope")); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("KeyByHash(unknown) = %v, want ErrKeyNotFound", err)
		}
		if _, err := s.Key(ctx, "key_nope"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Key(unknown) = %v, want ErrKeyNotFound", err)
		}
		if err := s.RevokeKey(ctx, "key_nope", time.Now()); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("RevokeKey(unknown) = %v, want ErrKeyNotFound", err)
		}
	})
	t.Run("duplicate hash refused", func(t *testing.T) {
		dup := *created
		dup.ID = "key_other"
		if err := s.CreateKey(ctx, &dup); err == nil {
			t.Error("a second key with the same hash was stored")
		}
	})
	t.Run("revoke keeps first time", func(t *testing.T) {
		first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := s.RevokeKey(ctx, created.ID, first); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeKey(ctx, created.ID, first.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Key(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.RevokedAt.Equal(first) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, first)
		}
	})
}

func TestSQLiteListAndCount(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	now := time.Now()
	names := []string{"a", "b", "c", "d"}
	ids := map[string]string{}
	for _, n := range names {
		spec := KeySpec{Name: n}
		if n == "c" {
			spec.ExpiresAt = now.Add(time.Hour)
		}
		_, k, err := createKey(ctx, s, spec, now)
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = k.ID
		now = now.Add(time.Millisecond) // created_at orders the list
	}
	if err := s.RevokeKey(ctx, ids["b"], now); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Name)
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("ListKeys order (-want +got):\n%s", diff)
	}
	cases := []struct {
		name string
		at   time.Time
		want int
	}{
		{"now: all but the revoked", now, 3},
		{"after c expired", now.Add(2 * time.Hour), 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := s.CountActiveKeys(ctx, c.at)
			if err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("CountActiveKeys = %d, want %d", n, c.want)
			}
		})
	}
}

func TestSQLiteMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	secret, k, err := CreateKey(ctx, s, KeySpec{Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync int
	if err := s.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("reopen keeps data and version", func(t *testing.T) {
		s, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var v int
		if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
			t.Errorf("user_version = %d, %v; want %d", v, err, len(migrations))
		}
		got, err := s.KeyByHash(ctx, HashSecret(secret))
		if err != nil || got.ID != k.ID {
			t.Errorf("key after reopen = %v, %v; want %s", got, err, k.ID)
		}
	})
	t.Run("newer schema refused", func(t *testing.T) {
		s, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err := OpenSQLite(ctx, path); err == nil {
			s.Close()
			t.Error("a database from a newer sdgate was opened")
		}
	})
	t.Run("question mark in path refused", func(t *testing.T) {
		if s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "a?b.db")); err == nil {
			s.Close()
			t.Error("path with '?' accepted")
		}
	})
}

func TestSQLiteUsage(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	_, a, err := CreateKey(ctx, s, KeySpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 11, 1, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute) // just after midnight
	recs := []UsageRecord{
		{KeyID: a.ID, RequestID: "r1", Model: "m", At: day1, Duration: 30 * time.Second, Images: 2, Pixels: 2 * 512 * 512, Steps: 40, GPUSeconds: 1.5, Status: 200},
		{KeyID: a.ID, RequestID: "r2", Model: "m", At: day1, Images: 1, Pixels: 512 * 512, Steps: 20, GPUSeconds: 0, Cached: true, Status: 200},
		{KeyID: a.ID, RequestID: "r3", Model: "m", At: day2, Images: 0, Status: 499},
		{KeyID: a.ID, RequestID: "r4", Model: "m", At: day2, Images: 4, Pixels: 4 * 256 * 256, Steps: 80, GPUSeconds: 2.25, Status: 200},
		{KeyID: "key_other", RequestID: "r5", Model: "m", At: day2, Images: 3, Status: 200},
	}
	if err := s.RecordUsage(ctx, recs[:2]...); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[2:] {
		if err := s.RecordUsage(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("by day, one key", func(t *testing.T) {
		got, err := s.UsageByDay(ctx, a.ID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want := []DayUsage{
			{Day: "2026-11-01", KeyID: a.ID, Requests: 2, Cached: 1, Images: 3, Pixels: 3 * 512 * 512, Steps: 60, GPUSeconds: 1.5},
			{Day: "2026-11-02", KeyID: a.ID, Requests: 2, Failed: 1, Images: 4, Pixels: 4 * 256 * 256, Steps: 80, GPUSeconds: 2.25},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UsageByDay (-want +got):\n%s", diff)
		}
	})
	t.Run("since and all keys", func(t *testing.T) {
		got, err := s.UsageByDay(ctx, "", day2)
		if err != nil {
			t.Fatal(err)
		}
		images := map[string]int64{}
		for _, u := range got {
			images[u.KeyID] += u.Images
		}
		if len(got) != 2 || images[a.ID] != 4 || images["key_other"] != 3 {
			t.Errorf("UsageByDay(all, since day2) = %+v, want day2 only: 4 images of a, 3 of key_other", got)
		}
	})
	t.Run("totals", func(t *testing.T) {
		today, total, err := s.UsageTotals(ctx, a.ID, "2026-11-02")
		if err != nil {
			t.Fatal(err)
		}
		if today != 4 || total != 7 {
			t.Errorf("UsageTotals = %d today, %d total; want 4, 7", today, total)
		}
	})
	t.Run("last used moves forward only", func(t *testing.T) {
		k, err := s.Key(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !k.LastUsedAt.Equal(day2) {
			t.Errorf("LastUsedAt = %v, want %v", k.LastUsedAt, day2)
		}
	})
}

func TestSQLiteRecordAfterClose(t *testing.T) {
	s, err := OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	err = s.RecordUsage(context.Background(), UsageRecord{KeyID: "k", At: time.Now()})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("RecordUsage after Close = %v, want ErrClosed", err)
	}
}
