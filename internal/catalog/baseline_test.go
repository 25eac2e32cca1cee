package catalog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The shipped catalog declares two baselines (request rate and p95 latency,
// docs/baselines.md); its specs are golden files (TestSparkSpecGolden).
func TestShippedBaselines(t *testing.T) {
	sh, err := Load(shipped)
	require.NoError(t, err)
	var with []string
	for _, m := range sh.Metrics {
		if len(m.Baselines) > 0 {
			with = append(with, m.Name)
		}
	}
	require.Equal(t, []string{"request_rate", "latency"}, with)
	rr, _ := sh.Metric("request_rate")
	require.Equal(t, Baseline{Output: "requests", Window: Duration{time.Hour},
		Lookback:  Lookback{Kind: LookbackSameWindowOfDay, Count: 7},
		Statistic: StatMedianMAD, Z: 3, MinSamples: 5, Line: rr.Baselines[0].Line}, rr.Baselines[0])
}

func TestBaselineSpecFields(t *testing.T) {
	c, err := Load("testdata/full.good.yaml")
	require.NoError(t, err)
	s := SparkSpec(c.Metrics[0])
	require.Len(t, s.Baselines, 1)
	b := s.Baselines[0]
	require.Equal(t, "p_p99_9", b.Output)
	require.Equal(t, "1h", b.Window, "the metric's only window applies")
	require.Equal(t, "baseline.p_p99_9", b.DocumentField)
	require.Equal(t, []string{"tenant", "host", "window.start", "p_p99_9"}, b.ReadFields)
	require.Equal(t, int64(3600), b.StepSeconds, "last_windows steps by the window size")
	require.Zero(t, b.CacheTTLSeconds, "no cache for last_windows: the previous window may still change")
	require.Equal(t, "mad", b.Spread)
	require.Equal(t, MADScale, b.MADScale)

	sh, err := Load(shipped)
	require.NoError(t, err)
	lat, _ := sh.Metric("latency")
	lb := SparkSpec(lat).Baselines[0]
	require.Equal(t, int64(86400), lb.StepSeconds)
	require.Equal(t, "sample_stddev", lb.Spread)
	require.Zero(t, lb.MADScale)
	require.Positive(t, lb.CacheTTLSeconds)
}

// The look-back starts are a pure formula (start − k·step, k = 1..count); the
// golden file is also read by the driver's tests (tests/test_baseline.py), so
// Go and Python agree on it.
func TestBaselineStartsGolden(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	type row struct {
		Window        string   `json:"window"`
		Lookback      string   `json:"lookback"`
		LookbackCount int      `json:"lookback_count"`
		StepSeconds   int64    `json:"step_seconds"`
		Start         string   `json:"start"`
		Starts        []string `json:"starts"`
	}
	var rows []row
	for _, b := range []Baseline{
		{Window: Duration{time.Hour}, Lookback: Lookback{LookbackSameWindowOfDay, 7}},
		{Window: Duration{time.Minute}, Lookback: Lookback{LookbackSameWindowOfDay, 3}},
		{Window: Duration{time.Hour}, Lookback: Lookback{LookbackLastWindows, 12}},
		{Window: Duration{time.Minute}, Lookback: Lookback{LookbackLastWindows, 5}},
	} {
		r := row{Window: b.Window.String(), Lookback: string(b.Lookback.Kind), LookbackCount: b.Lookback.Count,
			StepSeconds: int64(b.Lookback.Step(b.Window.Duration) / time.Second), Start: start.Format(time.RFC3339)}
		for _, s := range b.Starts(start) {
			r.Starts = append(r.Starts, s.Format(time.RFC3339))
		}
		rows = append(rows, r)
	}
	require.Equal(t, "2026-02-28T10:00:00Z", rows[0].Starts[0], "one day back, across the month")
	require.Equal(t, "2026-02-22T10:00:00Z", rows[0].Starts[6])
	require.Equal(t, "2026-03-01T09:55:00Z", rows[3].Starts[4])
	b, err := json.MarshalIndent(rows, "", "  ")
	require.NoError(t, err)
	golden(t, "baseline-starts.json", append(b, '\n'))
}

func TestBaselineIsReserved(t *testing.T) {
	_, err := Parse([]byte("metrics:\n  - name: m\n    description: d\n    aggregations: [{name: baseline, fn: count}]\n"))
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), `aggregation name "baseline"`), err)
}
