package lagmon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// The input rule (issue 19): window 1m, allowed lateness 10m, margin 5m, so
// a window is due 16 minutes after its start as the input moves on.
func TestInputRule(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.UTC) }
	const w, lateness, margin = time.Minute, 10 * time.Minute, 5 * time.Minute
	minutes := func(from, to time.Time) []time.Time {
		var out []time.Time
		for ts := from; !ts.After(to); ts = ts.Add(time.Minute) {
			out = append(out, ts.Add(17*time.Second))
		}
		return out
	}
	cases := []struct {
		name        string
		input       []time.Time
		metricInput time.Time // newest input over every tenant
		windowEnd   time.Time // zero: no window
		atRisk      bool
		dueEnd      time.Time // zero: none due
		ahead       time.Duration
		unknown     string
	}{
		{name: "frozen: input moves, windows stopped at 10:06",
			input: minutes(at(10, 0), at(10, 30)), metricInput: at(10, 30).Add(17 * time.Second), windowEnd: at(10, 6),
			atRisk: true, dueEnd: at(10, 15), ahead: 24*time.Minute + 17*time.Second},
		{name: "healthy: windows follow the input",
			input: minutes(at(10, 0), at(10, 30)), metricInput: at(10, 30).Add(17 * time.Second), windowEnd: at(10, 30),
			dueEnd: at(10, 15), ahead: 17 * time.Second},
		{name: "quiet tenant: no input since 09:05, its last window is there",
			input: minutes(at(9, 0), at(9, 5)), metricInput: at(10, 30), windowEnd: at(9, 6),
			dueEnd: at(9, 6)},
		{name: "quiet tenant whose last records never reached a window",
			input: minutes(at(9, 0), at(9, 5)), metricInput: at(10, 30), windowEnd: at(9, 3),
			atRisk: true, dueEnd: at(9, 6), ahead: 2*time.Minute + 17*time.Second},
		{name: "young input, nothing due yet",
			input: minutes(at(10, 20), at(10, 30)), metricInput: at(10, 30).Add(17 * time.Second),
			unknown: "no_window"},
		{name: "input due, no window at all",
			input: minutes(at(10, 0), at(10, 30)), metricInput: at(10, 30).Add(17 * time.Second),
			atRisk: true, dueEnd: at(10, 15), unknown: "no_window"},
		{name: "at the bound: the window ending at the due end is there",
			input: []time.Time{at(10, 14)}, metricInput: at(10, 30), windowEnd: at(10, 15),
			dueEnd: at(10, 15)},
		{name: "one millisecond short of the due end",
			input: []time.Time{at(10, 14)}, metricInput: at(10, 30), windowEnd: at(10, 15).Add(-time.Millisecond),
			atRisk: true, dueEnd: at(10, 15), ahead: 0},
		{name: "at the bound: input exactly lateness+margin+window past the window start is due",
			input: []time.Time{at(10, 14)}, metricInput: at(10, 30), dueEnd: at(10, 15), atRisk: true, unknown: "no_window"},
		{name: "one millisecond before it is not",
			input: []time.Time{at(10, 14)}, metricInput: at(10, 30).Add(-time.Millisecond), unknown: "no_window"},
		{name: "an old backfill record does not pull a healthy tenant back",
			input: append(minutes(at(10, 0), at(10, 30)), at(8, 0)), metricInput: at(10, 30), windowEnd: at(10, 30),
			dueEnd: at(10, 15), ahead: 17 * time.Second},
		{name: "no input seen", metricInput: at(10, 30), windowEnd: at(10, 6), unknown: ReasonNoInputSeen},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in *tenantInput
			if c.input != nil {
				in = &tenantInput{}
				for _, ts := range c.input {
					in.observe(ts, w)
				}
			}
			v := evaluateInput(in, c.metricInput, c.windowEnd, !c.windowEnd.IsZero(), w, lateness, margin)
			require.Equal(t, c.atRisk, v.AtRisk)
			if c.dueEnd.IsZero() {
				require.Nil(t, v.DueEnd)
			} else {
				require.NotNil(t, v.DueEnd)
				require.Equal(t, c.dueEnd, *v.DueEnd)
			}
			require.Equal(t, c.unknown, v.Unknown)
			if c.unknown == "" {
				require.True(t, v.Ahead.Known)
				require.Equal(t, c.ahead, v.Ahead.D)
			} else {
				require.False(t, v.Ahead.Known)
			}
		})
	}
}

// Every size the input decides has a bound, tested at the bound.
func TestInputBounds(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ti := &tenantInput{}
	for i := range inputWindowsMax + 10 {
		ti.observe(now.Add(time.Duration(i)*time.Minute), time.Minute)
	}
	require.Len(t, ti.windows, inputWindowsMax)
	require.Equal(t, now.Add(10*time.Minute), ti.windows[0], "the oldest windows go first")

	mi := (&inputTracker{}).metric("m")
	rec := func(ts time.Time) []byte {
		return fmt.Appendf(nil, `{"timestamp":%q,"status":200}`, ts.Format(time.RFC3339Nano))
	}
	for i := range inputTenantsMax {
		mi.add(fmt.Sprintf("t%d", i), rec(now.Add(-time.Minute)), time.Minute, now)
	}
	require.Len(t, mi.tenants, inputTenantsMax)
	require.Zero(t, mi.overflow, "exactly at the bound every tenant is tracked")
	mi.add("one-more", rec(now), time.Minute, now)
	require.Len(t, mi.tenants, inputTenantsMax)
	require.EqualValues(t, 1, mi.overflow)

	mi = (&inputTracker{}).metric("m")
	mi.add("a", rec(now.Add(time.Hour)), time.Minute, now)
	require.Equal(t, now, mi.tenants["a"].newest, "a future event time is capped at the clock")
	require.Equal(t, now, mi.newest)
	mi.add("", []byte(`{"timestamp":"2026-12-04T09:00:00Z","tenant":"b"}`), time.Minute, now)
	require.Contains(t, mi.tenants, "b", "the tenant from the record when the key is empty")
	for _, bad := range []string{`{`, `{"timestamp":"yesterday"}`, `{"timestamp":7}`,
		`{"timestamp":"` + strings.Repeat("9", inputTimestampMax+1) + `"}`} {
		mi.add("a", []byte(bad), time.Minute, now)
	}
	require.EqualValues(t, 4, mi.bad)
	require.Len(t, mi.tenants, 2)
}

func TestInputReadPosition(t *testing.T) {
	require.EqualValues(t, 90, readPosition(100, map[int]int64{0: 90}, 0), "the job's committed offset")
	require.EqualValues(t, 100, readPosition(100, map[int]int64{0: 120}, 0), "a commit past the end is not trusted")
	require.EqualValues(t, 100, readPosition(100, map[int]int64{1: 90}, 0), "never committed: the end")
	require.EqualValues(t, 0, tailStart(0, false, 100))
	require.EqualValues(t, 1000-inputTailRecords, tailStart(0, false, 1000))
	require.EqualValues(t, 900, tailStart(900, true, 1000), "continue after what was read")
	require.EqualValues(t, 1000-inputTailRecords, tailStart(10, true, 1000), "but at most the tail")
	require.EqualValues(t, 1000-inputTailRecords, tailStart(2000, true, 1000), "a position that went back (topic recreated)")
}

// inputFake is a broker with one metric topic; methods the input reader
// does not use are left to the nil interface.
type inputFake struct {
	brokerReader
	topic   string
	end     map[int]int64
	records map[int][]kafkawire.Record // partition → records, offsets from 0
	fetches int
}

func (f *inputFake) Metadata(_ context.Context, topics []string) (map[string]kafkawire.TopicMeta, error) {
	out := map[string]kafkawire.TopicMeta{}
	for _, t := range topics {
		if t == f.topic {
			tm := kafkawire.TopicMeta{Name: t}
			for p := range f.end {
				tm.Partitions = append(tm.Partitions, kafkawire.PartitionMeta{ID: p, Leader: "leader:9092"})
			}
			out[t] = tm
		}
	}
	return out, nil
}

func (f *inputFake) ListOffsets(_ context.Context, _, _ string, partitions []int, which int64, _ bool) (map[int]int64, map[int]error, error) {
	out := map[int]int64{}
	for _, p := range partitions {
		if which == kafkawire.Earliest {
			out[p] = 0
		} else {
			out[p] = f.end[p]
		}
	}
	return out, nil, nil
}

func (f *inputFake) Fetch(_ context.Context, _, _ string, p int, offset int64, _ int32, _ bool) (*kafkawire.Partition, error) {
	f.fetches++
	recs := f.records[p][offset:]
	if len(recs) > 10 {
		recs = recs[:10] // a bounded answer: the reader continues next poll
	}
	part := &kafkawire.Partition{HighWatermark: f.end[p], LastStableOffset: f.end[p]}
	if len(recs) > 0 {
		part.Batches = []kafkawire.Batch{{BaseOffset: recs[0].Offset, LastOffset: recs[len(recs)-1].Offset, Records: recs}}
	}
	return part, nil
}

func (f *inputFake) produce(p int, tenant string, ts time.Time) {
	off := int64(len(f.records[p]))
	f.records[p] = append(f.records[p], kafkawire.Record{Offset: off, Key: []byte(tenant),
		Value: fmt.Appendf(nil, `{"timestamp":%q,"status":200}`, ts.Format(time.RFC3339))})
	f.end[p] = off + 1
}

// One fetch per partition whose position moved; none while it stands still;
// the job's committed offset, when the snapshot knows it, bounds what is read.
func TestReadInputCachedWhileOffsetStill(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	mt := catalog.Metric{Name: "lat"}
	f := &inputFake{topic: topology.MetricTopic("lat"), end: map[int]int64{0: 0, 1: 0}, records: map[int][]kafkawire.Record{}}
	m, _ := newPollMonitor(t, f, nil)
	for i := range 5 {
		f.produce(0, "busy", now.Add(time.Duration(i-5)*time.Minute))
	}
	mi, err := m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-time.Minute), mi.tenants["busy"].newest)
	require.Equal(t, 1, f.fetches, "partition 1 is empty: nothing to fetch")

	_, err = m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, 1, f.fetches, "the end did not move: cached")
	require.Equal(t, 2.0, testutil.ToFloat64(m.metrics.signals.inputReads.WithLabelValues("cached")), "both partitions")

	for i := range 25 { // more than one fetch answer holds
		f.produce(1, "other", now.Add(time.Duration(i-25)*time.Second))
	}
	_, err = m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, 2, f.fetches)
	require.Equal(t, now.Add(-16*time.Second), mi.tenants["other"].newest, "the first 10 records")
	_, err = m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	_, err = m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-time.Second), mi.tenants["other"].newest, "then the rest, poll by poll")

	// The job has committed only offset 2 of partition 0: newer records are
	// its lag, not its input.
	m.snap.Store(&Snapshot{Groups: []GroupStatus{{Group: topology.MetricGroup("lat"),
		Partitions: []PartitionLag{{Topic: f.topic, Partition: 0, Committed: Known(2)}}}}})
	m.input = inputTracker{}
	mi, err = m.readInput(context.Background(), mt, time.Minute, now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-4*time.Minute), mi.tenants["busy"].newest)
}

func TestApplyInput(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.UTC) }
	mi := (&inputTracker{}).metric("m")
	for ts := at(10, 0); ts.Before(at(10, 31)); ts = ts.Add(time.Minute) {
		mi.add("frozen", fmt.Appendf(nil, `{"timestamp":%q}`, ts.Format(time.RFC3339)), time.Minute, at(10, 31))
		mi.add("new", fmt.Appendf(nil, `{"timestamp":%q}`, ts.Format(time.RFC3339)), time.Minute, at(10, 31))
	}
	mi.add("quiet", []byte(`{"timestamp":"2026-12-04T09:05:00Z"}`), time.Minute, at(10, 31))
	f := MetricFreshness{Metric: "m", Status: status.OK, Tenants: []TenantFreshness{
		{Tenant: "frozen", Status: status.OK}, {Tenant: "quiet", Status: status.OK}, {Tenant: "silent", Status: status.OK}}}
	latest := map[string]time.Time{"frozen": at(10, 6), "quiet": at(9, 6), "silent": at(8, 0)}
	applyInput(&f, mi, latest, time.Minute, 10*time.Minute, 5*time.Minute)
	require.Equal(t, status.AtRisk, f.Status)
	require.Equal(t, 2, f.InputBehindTenants)
	got := map[string]TenantFreshness{}
	for _, tf := range f.Tenants {
		got[tf.Tenant] = tf
	}
	require.Len(t, got, 4, "a tenant with due input but no document is listed")
	require.Equal(t, status.AtRisk, got["frozen"].Status)
	require.Equal(t, ReasonInputAhead, got["frozen"].Reason)
	require.Equal(t, 24*time.Minute, got["frozen"].InputAhead.D)
	require.Equal(t, status.AtRisk, got["new"].Status)
	require.Equal(t, status.OK, got["quiet"].Status)
	require.Empty(t, got["quiet"].Reason)
	require.Equal(t, status.OK, got["silent"].Status, "no input seen: the clock rule alone")
	require.Equal(t, ReasonNoInputSeen, got["silent"].InputAheadUnknownReason)
	require.Equal(t, 24*time.Minute, f.InputAhead.D)
	require.Equal(t, "metric m: its input moves but its windows do not (input_ahead_of_windows, input ahead by 24m0s) for tenants frozen, new",
		inputAlertDescription(f), "the monitor's own alert says why")

	breach := MetricFreshness{Status: status.Breach, Tenants: []TenantFreshness{{Tenant: "frozen", Status: status.Breach}}}
	applyInput(&breach, mi, latest, time.Minute, 10*time.Minute, 5*time.Minute)
	require.Equal(t, status.Breach, breach.Status, "the input rule never lowers a status")
}

func TestBoundTenants(t *testing.T) {
	c := dropCounts{
		late:        map[string]int64{"a": 50, "b": 30, "c": 10, "d": 0},
		outOfRange:  map[string]int64{"c": 25, "e": 1},
		windows:     map[string]int64{"a": 950, "b": 70, "c": 0, "d": 500, "e": 9},
		lateTotal:   90,
		oorTotal:    26,
		windowTotal: 1529,
	}
	d := boundTenants(c, 2)
	require.Equal(t, []string{"a", "c", OtherTenants}, tenantsOf(d), "top 2 by late + out_of_range, then the rest")
	require.Equal(t, TenantDropped{Tenant: OtherTenants, Late: 30, OutOfRange: 1, WindowRecords: 70 + 500 + 9, LateShare: lateShare(30, 579)}, d.Tenants[2])
	require.InDelta(t, 0.05, *d.Tenants[0].LateShare, 1e-9)
	require.InDelta(t, 90.0/1619, *d.LateShare, 1e-9)

	d = boundTenants(c, 4)
	require.Equal(t, []string{"a", "c", "b", "e"}, tenantsOf(d), "at the bound every tenant with drops has its own entry, and no _other")
	d = boundTenants(c, 3)
	require.Equal(t, []string{"a", "c", "b", OtherTenants}, tenantsOf(d))

	d = boundTenants(dropCounts{windowTotal: 10}, 5)
	require.Empty(t, d.Tenants, "nothing dropped: no tenant series")
	require.InDelta(t, 0, *d.LateShare, 1e-9)
	require.Nil(t, boundTenants(dropCounts{}, 5).LateShare, "no records at all: the share is unknown")
}

func tenantsOf(d MetricDropped) []string {
	var out []string
	for _, t := range d.Tenants {
		out = append(out, t.Tenant)
	}
	return out
}

func TestDroppedConfigBounds(t *testing.T) {
	for _, c := range []struct {
		n  int
		ok bool
	}{{0, false}, {1, true}, {MaxDroppedTenants, true}, {MaxDroppedTenants + 1, false}} {
		cfg := DefaultConfig()
		cfg.DroppedTenants = c.n
		if c.ok {
			require.NoError(t, cfg.Validate(), c.n)
		} else {
			require.ErrorContains(t, cfg.Validate(), "dropped_tenants", c.n)
		}
	}
	cfg := DefaultConfig()
	cfg.DroppedLookback, cfg.InputMargin = 30*time.Second, -time.Second
	err := cfg.Validate()
	require.ErrorContains(t, err, "dropped_lookback")
	require.ErrorContains(t, err, "input_margin")
}

// The signals reach /metrics (bounded labels) and the status page.
func TestSignalsExportedAndShown(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := &Monitor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), history: newHistory()}
	m.st.Store(&state{cfg: DefaultConfig()})
	m.metrics = newMetrics(reg, m)
	newest := time.Now().UTC()
	m.snap.Store(&Snapshot{At: newest, Groups: []GroupStatus{}, JobRuns: []JobRunStatus{},
		Freshness: []MetricFreshness{{Metric: "lat", Status: status.AtRisk, InputNewest: &newest, InputAhead: Seconds{20 * time.Minute, true}, InputBehindTenants: 1,
			Tenants: []TenantFreshness{{Tenant: "frozen", Status: status.AtRisk, Reason: ReasonInputAhead, InputAhead: Seconds{20 * time.Minute, true}}}}},
		Dropped: []MetricDropped{boundTenants(dropCounts{late: map[string]int64{"frozen": 300}, windows: map[string]int64{"frozen": 0}, lateTotal: 300, windowTotal: 700}, 20)},
	})
	m.snap.Load().Dropped[0].Metric = "lat"
	v, ok := telemetrytest.Series(t, reg, "hourglass_metric_dropped_records", map[string]string{"metric": "lat", "tenant": "frozen", "reason": DropLate})
	require.True(t, ok)
	require.Equal(t, 300.0, v)
	v, ok = telemetrytest.Series(t, reg, "hourglass_metric_input_ahead_seconds", map[string]string{"metric": "lat"})
	require.True(t, ok)
	require.Equal(t, 1200.0, v)
	n, err := testutil.GatherAndCount(reg, "hourglass_metric_dropped_records", "hourglass_metric_window_records", "hourglass_metric_input_ahead_seconds", "hourglass_metric_input_behind_tenants")
	require.NoError(t, err)
	require.Equal(t, 5, n, "late and out_of_range for one tenant, its window records, the gap and the count")

	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/status", nil))
	require.Equal(t, http.StatusOK, rr.Code)
	body := rr.Body.String()
	require.Contains(t, body, ReasonInputAhead)
	require.Contains(t, body, "100.00%", "the late share of the frozen tenant")
	require.Contains(t, body, "hourglass_router_records_filtered_total")
}
