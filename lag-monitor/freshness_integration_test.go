//go:build integration

package lagmon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Freshness per metric and tenant from real OpenSearch documents: a tenant
// with traffic in an hour that is due but has no hourly document is BREACH;
// a metric whose alias does not exist is NO_DATA, not an error; job runs
// longer than their period are flagged.
func TestFreshnessAndJobRuns(t *testing.T) {
	esURL := stacktest.Get(t, "HOURGLASS_ES_URL")
	es, err := esclient.New(esclient.Config{URLs: []string{esURL}})
	require.NoError(t, err)
	ctx := context.Background()

	suffix := strings.ReplaceAll(stacktest.UniqueName("f")[2:], "-", "")
	metric, absent := "lat_"+suffix, "gone_"+suffix
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catPath, []byte(fmt.Sprintf(`metrics:
  - name: %s
    description: test
    aggregations: [{name: requests, fn: count}]
  - name: %s
    description: test
    aggregations: [{name: requests, fn: count}]
`, metric, absent)), 0o644))

	now := time.Now().UTC()
	hour := now.Truncate(time.Hour)
	due := now.Add(-time.Hour).Truncate(time.Hour) // hours ending at or before this are due
	index := catalog.IndexName(metric, now)
	jobs := "test-jobruns-" + suffix
	t.Cleanup(func() {
		_ = es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{index, jobs}}, "cleanup", nil)
	})
	mapping := `{"mappings":{"properties":{"tenant":{"type":"keyword"},"metric":{"type":"keyword"},
	  "window":{"properties":{"start":{"type":"date"},"end":{"type":"date"},"size":{"type":"keyword"}}}}},
	  "aliases":{"` + catalog.Alias(metric) + `":{}}}`
	require.NoError(t, es.Do(ctx, esapi.IndicesCreateRequest{Index: index, Body: strings.NewReader(mapping)}, "create "+index, nil))
	doc := func(tenant, size string, start time.Time, d time.Duration) string {
		b, _ := json.Marshal(map[string]any{"metric": metric, "tenant": tenant, "requests": 1, "samples": 1,
			"window": map[string]any{"start": start, "end": start.Add(d), "size": size}, "computed_at": now})
		return `{"index":{}}` + "\n" + string(b) + "\n"
	}
	body := doc("fresh", "1h", hour.Add(-time.Hour), time.Hour) + // newest hour ends at `hour`
		doc("fresh", "1m", hour.Add(-30*time.Minute), time.Minute) +
		doc("late", "1h", due.Add(-2*time.Hour), time.Hour) + // newest hour ends due-1h
		doc("late", "1m", due.Add(-30*time.Minute), time.Minute) // traffic in hour [due-1h, due): due, missing
	refresh := "true"
	require.NoError(t, es.Do(ctx, esapi.BulkRequest{Index: index, Body: strings.NewReader(body), Refresh: refresh}, "bulk", nil))
	run := func(m string, start time.Time, dur float64) string {
		// The driver's document (metrics-jobs/hourglass_jobs/batch.py, from the spec's job_runs).
		b, _ := json.Marshal(map[string]any{catalog.RunMetric: m, catalog.RunHour: start.Truncate(time.Hour).Format(time.RFC3339),
			catalog.RunMode: "batch", catalog.RunStart: start.Format(time.RFC3339), catalog.RunDurationSeconds: dur,
			catalog.RunRecords: 10, catalog.RunOutcome: catalog.RunOK})
		return `{"index":{}}` + "\n" + string(b) + "\n"
	}
	runs := run(metric, now.Add(-2*time.Hour), 5400) + run(metric, now.Add(-3*time.Hour), 60) + run(absent, now.Add(-time.Hour), 120)
	require.NoError(t, es.Do(ctx, esapi.BulkRequest{Index: jobs, Body: strings.NewReader(runs), Refresh: refresh}, "bulk runs", nil))

	e := newEnv(t, fmt.Sprintf("poll_interval: 200ms\nwindow: 1s\ncatalog: %q\ndeny: [\"^hourglass-\"]\nes_urls: [%q]\nfreshness_interval: 200ms\njob_runs_index: %q\n",
		catPath, esURL, jobs))
	e.start()
	s := e.waitSnap(20*time.Second, "freshness", func(s *lagmon.Snapshot) bool { return len(s.Freshness) == 2 && len(s.JobRuns) == 2 })
	byMetric := map[string]lagmon.MetricFreshness{}
	for _, f := range s.Freshness {
		byMetric[f.Metric] = f
	}
	require.Equal(t, status.NoData, byMetric[absent].Status)
	require.Empty(t, byMetric[absent].Error)
	require.Empty(t, s.Errors, "a missing alias or index is no error")
	f := byMetric[metric]
	require.Equal(t, status.Breach, f.Status)
	tenants := map[string]lagmon.TenantFreshness{}
	for _, tf := range f.Tenants {
		tenants[tf.Tenant] = tf
	}
	require.Equal(t, status.OK, tenants["fresh"].Status)
	require.InDelta(t, s.At.Sub(hour).Seconds(), tenants["fresh"].Age.D.Seconds(), 5)
	require.Equal(t, status.Breach, tenants["late"].Status)
	require.Equal(t, due.Add(-time.Hour), *tenants["late"].Missing)

	runsBy := map[string]lagmon.JobRunStatus{}
	for _, r := range s.JobRuns {
		runsBy[r.Metric] = r
	}
	require.True(t, runsBy[metric].Overrun, "the latest run took 1.5 h for a 1 h period")
	require.False(t, runsBy[absent].Overrun)
	require.Equal(t, 2, e.seriesWith("tenant", "late"), "freshness age and breach flag")
}
