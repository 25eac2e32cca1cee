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
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/topology"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Issue 19: a frozen metric — records keep coming into its topic with fresh
// event times, its windows stopped (a poisoned watermark counts them all
// late) — turns AT_RISK within a few polls, long before the one-hour SLA,
// with the reason input_ahead_of_windows; a quiet tenant with no traffic
// stays OK. The metric job is simulated: its topic gets projected records
// (key tenant, value with "timestamp"), OpenSearch gets its window documents
// and its late-record documents. Windows 1m, allowed lateness 1m, margin 30s:
// a window is due 2m30s after its start as the input moves on.
func TestFrozenMetricAtRiskQuietTenantOK(t *testing.T) {
	esURL := stacktest.Get(t, "HOURGLASS_ES_URL")
	es, err := esclient.New(esclient.Config{URLs: []string{esURL}})
	require.NoError(t, err)
	ctx := context.Background()

	suffix := strings.ReplaceAll(stacktest.UniqueName("z")[2:], "-", "")
	metric := "frz_" + suffix
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catPath, []byte(fmt.Sprintf(`metrics:
  - name: %s
    description: test
    allowed_lateness: 1m
    partitions: 2
    aggregations: [{name: requests, fn: count}]
`, metric)), 0o644))

	brokers := stacktest.Brokers(t)
	topic := topology.MetricTopic(metric)
	stacktest.CreateTopic(t, brokers, topic, 2)
	stacktest.DeleteTopicsOnCleanup(t, brokers, topic)

	// T: the start of this minute. Before the test: "busy" had traffic and
	// windows until T-15m; "quiet" until T-45m.
	T := time.Now().UTC().Truncate(time.Minute)
	index, late := catalog.IndexName(metric, T), catalog.LateIndex(metric)
	t.Cleanup(func() {
		_ = es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{index, late}, IgnoreUnavailable: esapi.BoolPtr(true)}, "cleanup", nil)
	})
	mapping := `{"mappings":{"properties":{"tenant":{"type":"keyword"},"metric":{"type":"keyword"},"samples":{"type":"long"},
	  "window":{"properties":{"start":{"type":"date"},"end":{"type":"date"},"size":{"type":"keyword"}}}}},
	  "aliases":{"` + catalog.Alias(metric) + `":{}}}`
	require.NoError(t, es.Do(ctx, esapi.IndicesCreateRequest{Index: index, Body: strings.NewReader(mapping)}, "create "+index, nil))
	lateMapping := `{"mappings":{"properties":{"tenant":{"type":"keyword"},"metric":{"type":"keyword"},"reason":{"type":"keyword"},
	  "late_records":{"type":"long"},"rejected_records":{"type":"long"},"computed_at":{"type":"date"},
	  "window":{"properties":{"start":{"type":"date"},"end":{"type":"date"},"size":{"type":"keyword"}}}}}}`
	require.NoError(t, es.Do(ctx, esapi.IndicesCreateRequest{Index: late, Body: strings.NewReader(lateMapping)}, "create "+late, nil))

	var bulk strings.Builder
	window := func(tenant string, start time.Time, samples int) {
		b, _ := json.Marshal(map[string]any{"metric": metric, "tenant": tenant, "requests": samples, "samples": samples,
			"window": map[string]any{"start": start, "end": start.Add(time.Minute), "size": "1m"}, "computed_at": start.Add(time.Minute)})
		bulk.WriteString(`{"index":{}}` + "\n" + string(b) + "\n")
	}
	var busyIn, quietIn []kafka.Message
	record := func(tenant string, ts time.Time) kafka.Message {
		return kafka.Message{Key: []byte(tenant), Value: []byte(fmt.Sprintf(`{"timestamp":%q,"status":200,"duration_ms":3}`, ts.Format(time.RFC3339Nano)))}
	}
	for s := T.Add(-30 * time.Minute); s.Before(T.Add(-14 * time.Minute)); s = s.Add(time.Minute) {
		window("busy", s, 4)
		for i := range 4 {
			busyIn = append(busyIn, record("busy", s.Add(time.Duration(i*10+5)*time.Second)))
		}
	}
	for s := T.Add(-50 * time.Minute); s.Before(T.Add(-44 * time.Minute)); s = s.Add(time.Minute) {
		window("quiet", s, 2)
		quietIn = append(quietIn, record("quiet", s.Add(20*time.Second)), record("quiet", s.Add(40*time.Second)))
	}
	require.NoError(t, es.Do(ctx, esapi.BulkRequest{Index: index, Body: strings.NewReader(bulk.String()), Refresh: "true"}, "bulk windows", nil))
	stacktest.ProduceToPartition(t, brokers, topic, 0, busyIn...)
	stacktest.ProduceToPartition(t, brokers, topic, 1, quietIn...)

	e := newEnv(t, fmt.Sprintf("poll_interval: 200ms\nwindow: 1s\ncatalog: %q\ndeny: [\"^hourglass-\"]\nes_urls: [%q]\nfreshness_interval: 200ms\ninput_margin: 30s\n",
		catPath, esURL))
	e.start()
	tenants := func(s *lagmon.Snapshot) map[string]lagmon.TenantFreshness {
		out := map[string]lagmon.TenantFreshness{}
		for _, f := range s.Freshness {
			for _, tf := range f.Tenants {
				out[tf.Tenant] = tf
			}
		}
		return out
	}
	// Before the freeze shows: both tenants OK, their input read.
	s := e.waitSnap(30*time.Second, "input read", func(s *lagmon.Snapshot) bool {
		ts := tenants(s)
		return len(s.Freshness) == 1 && ts["busy"].InputNewest != nil && ts["quiet"].InputNewest != nil
	})
	require.Equal(t, status.OK, s.Freshness[0].Status, "%+v", s.Freshness[0])
	require.Equal(t, status.OK, tenants(s)["busy"].Status)
	require.Equal(t, status.OK, tenants(s)["quiet"].Status)
	require.Equal(t, 0, s.Freshness[0].InputBehindTenants)
	require.Empty(t, s.Errors)

	// The freeze: busy's records keep coming, event times from T-14m to
	// now, and every one is counted late; no window is written.
	var fresh []kafka.Message
	var lateDocs strings.Builder
	lateN := 0
	for ts := T.Add(-14 * time.Minute); ts.Before(time.Now()); ts = ts.Add(20 * time.Second) {
		fresh = append(fresh, record("busy", ts))
		b, _ := json.Marshal(map[string]any{"metric": metric, "tenant": "busy", "reason": "late", "late_records": 1,
			"window":    map[string]any{"start": ts.Truncate(time.Minute), "end": ts.Truncate(time.Minute).Add(time.Minute), "size": "1m"},
			"watermark": "2098-12-31T23:50:00Z", "computed_at": time.Now().UTC()})
		lateDocs.WriteString(`{"index":{}}` + "\n" + string(b) + "\n")
		lateN++
	}
	stacktest.ProduceToPartition(t, brokers, topic, 0, fresh...)
	require.NoError(t, es.Do(ctx, esapi.BulkRequest{Index: late, Body: strings.NewReader(lateDocs.String()), Refresh: "true"}, "bulk late", nil))
	// ...and keep coming while the monitor polls.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				stacktest.ProduceToPartition(t, brokers, topic, 0, record("busy", time.Now()))
			}
		}
	}()
	defer func() { close(stop); <-done }()

	from := s.Poll
	s = e.waitSnap(30*time.Second, "busy AT_RISK", func(s *lagmon.Snapshot) bool {
		return len(s.Freshness) == 1 && tenants(s)["busy"].Status == status.AtRisk
	})
	require.LessOrEqual(t, s.Poll-from, uint64(25), "AT_RISK within a few polls (200ms each), not an hour")
	f := s.Freshness[0]
	require.Equal(t, status.AtRisk, f.Status)
	busy, quiet := tenants(s)["busy"], tenants(s)["quiet"]
	require.Equal(t, lagmon.ReasonInputAhead, busy.Reason)
	require.True(t, busy.InputAhead.Known)
	require.Greater(t, busy.InputAhead.D, 13*time.Minute, "input ahead of the newest window (T-15m..T-14m)")
	require.NotNil(t, busy.DueWindowEnd)
	require.True(t, busy.DueWindowEnd.After(T.Add(-14*time.Minute)))
	require.Equal(t, status.OK, quiet.Status, "a quiet tenant with no traffic stays OK")
	require.Empty(t, quiet.Reason)
	require.Equal(t, 1, f.InputBehindTenants)

	// The dropped records: busy's late ones counted, bounded labels.
	var d lagmon.MetricDropped
	s = e.waitSnap(10*time.Second, "late records counted", func(s *lagmon.Snapshot) bool {
		if len(s.Dropped) != 1 {
			return false
		}
		d = s.Dropped[0]
		return d.Late > 0
	})
	require.Empty(t, d.Error)
	require.EqualValues(t, lateN, d.Late)
	require.Len(t, d.Tenants, 1)
	require.Equal(t, "busy", d.Tenants[0].Tenant)
	require.EqualValues(t, lateN, d.Tenants[0].Late)
	require.EqualValues(t, 16*4, d.Tenants[0].WindowRecords, "busy's windows of the last hour")
	require.InDelta(t, float64(lateN)/float64(lateN+16*4), *d.Tenants[0].LateShare, 1e-9)
	require.EqualValues(t, 16*4+6*2, d.WindowRecords)
	require.Equal(t, 4, e.seriesWith("tenant", "busy"), "late, out_of_range and window records, the freshness breach flag; no freshness age without an hourly window")

	// Polls go on: the quiet tenant stays OK while busy stays AT_RISK.
	e.waitSnap(30*time.Second, "more polls", func(n *lagmon.Snapshot) bool {
		require.Equal(t, status.OK, tenants(n)["quiet"].Status)
		return n.Poll >= s.Poll+5
	})
}
