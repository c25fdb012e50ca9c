package auth

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUsageViews: the dashboard's per-model sums and newest-requests list
// read the same from SQLite and PostgreSQL.
func TestUsageViews(t *testing.T) {
	for name, open := range map[string]func(*testing.T) Store{
		"sqlite":   func(t *testing.T) Store { return openTestStore(t) },
		"postgres": func(t *testing.T) Store { return openTestPostgres(t) },
	} {
		t.Run(name, func(t *testing.T) { checkUsageViews(t, open(t)) })
	}
}

func checkUsageViews(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	recs := []UsageRecord{
		{KeyID: "a", RequestID: "r1", Model: "tiny", Endpoint: "/v1/images/generations", At: at, Duration: 1500 * time.Millisecond, Images: 2, Pixels: 2 * 64 * 64, Steps: 4, GPUSeconds: 1.25, Status: 200},
		{KeyID: "a", RequestID: "r2", Model: "tiny", Endpoint: "/v1/images/generations", At: at.Add(time.Second), Images: 2, Pixels: 2 * 64 * 64, Steps: 4, Cached: true, Status: 200},
		{KeyID: "a", RequestID: "r3", Model: "xl", Endpoint: "/v1/images/edits", At: at.Add(2 * time.Second), Images: 1, Pixels: 1024 * 1024, Steps: 2, GPUSeconds: 3, Status: 200, Inputs: []string{"d1", "d2"},
			Family: "sdxl", Generated: "1344x768"},
		{KeyID: "b", RequestID: "r4", Model: "xl", Endpoint: "/v1/images/generations", At: at.Add(3 * time.Second), Status: 429},
	}
	if err := s.RecordUsage(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	byModel, err := s.UsageByModel(ctx, "a", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []DayUsage{
		{Day: "2026-11-01", KeyID: "a", Model: "tiny", Requests: 2, Cached: 1, Images: 4, Pixels: 4 * 64 * 64, Steps: 8, GPUSeconds: 1.25},
		{Day: "2026-11-01", KeyID: "a", Model: "xl", Requests: 1, Images: 1, Pixels: 1024 * 1024, Steps: 2, GPUSeconds: 3},
	}
	if diff := cmp.Diff(want, byModel); diff != "" {
		t.Errorf("UsageByModel (-want +got):\n%s", diff)
	}
	if days, err := s.UsageByDay(ctx, "a", time.Time{}); err != nil || len(days) != 1 || days[0].Model != "" || days[0].Requests != 3 {
		t.Errorf("UsageByDay still sums over models: %+v, %v", days, err)
	}

	recent, err := s.RecentUsage(ctx, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 3 || recent[0].RequestID != "r4" || recent[2].RequestID != "r2" {
		t.Fatalf("RecentUsage(all, 3) = %+v, want r4, r3, r2", recent)
	}
	if diff := cmp.Diff(recs[2], recent[1]); diff != "" {
		t.Errorf("a record reads back as written (-want +got):\n%s", diff)
	}
	if mine, err := s.RecentUsage(ctx, "b", 10); err != nil || len(mine) != 1 || mine[0].RequestID != "r4" {
		t.Errorf("RecentUsage(b) = %+v, %v", mine, err)
	}
}
