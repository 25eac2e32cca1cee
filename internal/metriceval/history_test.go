package metriceval

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
)

// History writes, for each tenant, one document per window of the asked size
// in the asked hours of each past day — the windows a same_window_of_day
// baseline of those hours looks back at — and the same config gives the same
// documents.
func TestHistory(t *testing.T) {
	lat, ok := catalogtest.Shipped(t).Metric("latency")
	require.True(t, ok)
	from := time.Date(2026, 3, 2, 10, 20, 0, 0, time.UTC)
	cfg := HistoryConfig{Seed: 3, Tenants: 2, From: from, Hours: 2, Days: 7, RecordsPerHour: 400}
	docs, err := History(lat, []string{"1h"}, cfg)
	require.NoError(t, err)
	require.Len(t, docs, 7*2*2, "days × hours × tenants")
	starts := map[string]int{}
	for _, d := range docs {
		win := d.Doc[catalog.DocWindow].(map[string]any)
		require.Equal(t, "1h", win[catalog.WindowSize])
		starts[win[catalog.WindowStart].(string)]++
		require.Equal(t, catalog.IndexName("latency", mustTime(t, win[catalog.WindowStart])), d.Index)
		require.InDelta(t, 400, d.Doc[catalog.DocSamples], 100, "about RecordsPerHour per tenant")
		require.Positive(t, d.Doc["duration_ms_p95"])
	}
	for day := 1; day <= 7; day++ {
		for h := range 2 {
			s := time.Date(2026, 3, 2, 10+h, 0, 0, 0, time.UTC).AddDate(0, 0, -day).Format(time.RFC3339)
			require.Equal(t, 2, starts[s], "both tenants at %s", s)
		}
	}
	again, err := History(lat, []string{"1h"}, cfg)
	require.NoError(t, err)
	require.Equal(t, docs, again)

	_, err = History(lat, []string{"5m"}, cfg)
	require.ErrorContains(t, err, "no 5m windows")
	for _, bad := range []HistoryConfig{
		{Seed: 1, Tenants: 1, From: from, Hours: 1, Days: MaxHistoryDays + 1, RecordsPerHour: 1},
		{Seed: 1, Tenants: 1, From: from, Hours: MaxHistoryHours + 1, Days: 1, RecordsPerHour: 1},
		{Seed: 1, Tenants: MaxHistoryTenants + 1, From: from, Hours: 1, Days: 1, RecordsPerHour: 1},
		{Seed: 1, Tenants: 1, From: from, Hours: 1, Days: 1, RecordsPerHour: MaxHistoryRecordsPerHour + 1},
		{Seed: 1, Tenants: 1, Hours: 1, Days: 1, RecordsPerHour: 1},
	} {
		_, err := History(lat, []string{"1h"}, bad)
		require.Error(t, err, "%+v", bad)
	}
	_, err = History(lat, []string{"1h"}, HistoryConfig{Seed: 1, Tenants: 1, From: from, Hours: MaxHistoryHours,
		Days: 1, RecordsPerHour: 1})
	require.NoError(t, err, "at the bounds")
}

func mustTime(t *testing.T, v any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, v.(string))
	require.NoError(t, err)
	return ts
}
