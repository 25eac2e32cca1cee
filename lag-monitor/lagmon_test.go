package lagmon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	bad := DefaultConfig()
	bad.Brokers = nil
	bad.PollInterval = time.Millisecond
	bad.Allow = []string{"("}
	bad.AlertmanagerURLs = []string{"alertmanager:9093"}
	bad.SLAOverrides = []SLAOverride{{Group: "x", SLA: 0}}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"brokers", "poll-interval", "group pattern", "URL", "sla_overrides"} {
		require.ErrorContains(t, err, want)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadFile("lagmon.example.yaml", DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, 15*time.Minute, cfg.SLAOverrides[0].SLA)
	require.Equal(t, "lagmon.example.yaml", cfg.ConfigFile)

	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("windw: 1m\n"), 0o644))
	_, err = LoadFile(p, DefaultConfig())
	require.ErrorContains(t, err, "windw", "unknown keys are refused")
	require.NoError(t, os.WriteFile(p, []byte("auto_offset_reset: none\n"), 0o644))
	_, err = LoadFile(p, DefaultConfig())
	require.ErrorContains(t, err, "earliest or latest", "the start position is earliest or latest")
	require.NoError(t, os.WriteFile(p, []byte("auto_offset_reset_overrides: [{group: \"^x\", auto_offset_reset: latest}]\n"), 0o644))
	cfg, err = LoadFile(p, DefaultConfig())
	require.NoError(t, err)
	f, err := compileFilter(cfg)
	require.NoError(t, err)
	require.Equal(t, status.Latest, f.startAt("x1"))
	require.Equal(t, status.Earliest, f.startAt("hourglass-archiver"), "default: earliest")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	cfg, err = LoadFile(p, DefaultConfig())
	require.NoError(t, err, "an empty file sets nothing")
	require.Equal(t, DefaultConfig().Window, cfg.Window)
}

func TestGroupFilter(t *testing.T) {
	c := DefaultConfig()
	c.Allow = []string{"^team-"}
	c.Deny = []string{"-test$"}
	c.SLAOverrides = []SLAOverride{{Group: "^team-a", SLA: time.Minute}}
	f, err := compileFilter(c)
	require.NoError(t, err)
	require.True(t, f.allowed("team-a"))
	require.False(t, f.allowed("team-a-test"))
	require.False(t, f.allowed("other"))
	sla, ok := f.sla("team-a1")
	require.True(t, ok)
	require.Equal(t, time.Minute, sla)
}

func TestOffsetsPartitionMatchesKafka(t *testing.T) {
	// String.hashCode: s[0]*31^(n-1) + ... + s[n-1], in int32 arithmetic.
	// (The STALL integration test checks the partition against a real broker.)
	require.Equal(t, int32(0), javaStringHash(""))
	require.Equal(t, int32(97), javaStringHash("a"))
	require.Equal(t, int32(-217287203), javaStringHash("hello world!"))
	require.Equal(t, 3, offsetsPartition("hello world!", 50))
	require.Equal(t, 26, offsetsPartition("hourglass-router", 50))
}

// recorder is a test receiver for both alert paths.
type recorder struct {
	mu    sync.Mutex
	am    [][]Alert
	hooks []WebhookMessage
	fail  bool
}

func (r *recorder) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(req.Body)
		if req.URL.Path == "/api/v2/alerts" {
			var as []Alert
			require.NoError(t, json.Unmarshal(b, &as))
			r.am = append(r.am, as)
			return
		}
		var m WebhookMessage
		require.NoError(t, json.Unmarshal(b, &m))
		r.hooks = append(r.hooks, m)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNotifierDedupAndResolve(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t)
	cfg := DefaultConfig()
	cfg.AlertmanagerURLs = []string{srv.URL}
	cfg.WebhookURLs = []string{srv.URL + "/hook"}
	cfg.AlertResend = time.Minute
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry(), &Monitor{}))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := func(at time.Duration, s status.Status) *Snapshot {
		return &Snapshot{At: t0.Add(at), Groups: []GroupStatus{{Group: "g", Status: s, SLA: Seconds{time.Hour, true}}}}
	}
	ctx := context.Background()
	n.update(ctx, cfg, snap(0, status.OK))
	require.Empty(t, rec.am)
	n.update(ctx, cfg, snap(10*time.Second, status.Stop)) // fires
	n.update(ctx, cfg, snap(20*time.Second, status.Stop)) // no resend yet, no second webhook
	require.Len(t, rec.am, 1)
	require.Len(t, rec.hooks, 1)
	a := rec.am[0][0]
	require.Equal(t, "HourglassConsumerStopped", a.Labels["alertname"])
	require.Equal(t, t0.Add(10*time.Second), a.StartsAt)
	require.True(t, a.EndsAt.After(t0.Add(20*time.Second)))
	n.update(ctx, cfg, snap(75*time.Second, status.Stop)) // resend to Alertmanager only
	require.Len(t, rec.am, 2)
	require.Len(t, rec.hooks, 1)
	require.Equal(t, t0.Add(10*time.Second), rec.am[1][0].StartsAt, "same alert, same start")

	rec.fail = true
	n.update(ctx, cfg, snap(80*time.Second, status.OK)) // resolution fails: retried
	rec.fail = false
	n.update(ctx, cfg, snap(85*time.Second, status.OK))
	require.Len(t, rec.am, 3)
	res := rec.am[2][0]
	require.Equal(t, t0.Add(80*time.Second), res.EndsAt, "resolved as of when it ended")
	require.Len(t, rec.hooks, 2)
	require.Equal(t, "resolved", rec.hooks[1].Status)
	n.update(ctx, cfg, snap(90*time.Second, status.OK))
	require.Len(t, rec.am, 3, "nothing more to say")
	require.Len(t, rec.hooks, 2)
}

// Issue 21: when DATA_LOSS takes over the status of a stopped group, the
// stopped alert stays firing (STOP still holds); it resolves when STOP is
// gone, not when a worse condition hides it.
func TestNotifierResolvesOnlyWhenConditionIsGone(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t)
	cfg := DefaultConfig()
	cfg.WebhookURLs = []string{srv.URL + "/hook"}
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry(), &Monitor{}))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := func(at time.Duration, conds ...status.Status) *Snapshot {
		s := status.OK
		if len(conds) > 0 {
			s = conds[0]
		}
		return &Snapshot{At: t0.Add(at), Groups: []GroupStatus{{Group: "g", Status: s, Conditions: conds, SLA: Seconds{time.Hour, true}}}}
	}
	ctx := context.Background()
	n.update(ctx, cfg, snap(0, status.Stop))
	require.Len(t, rec.hooks, 1)
	require.Equal(t, "HourglassConsumerStopped", rec.hooks[0].Alerts[0].Labels["alertname"])
	n.update(ctx, cfg, snap(10*time.Second, status.DataLoss, status.Stop))
	require.Len(t, rec.hooks, 2, "data loss fires")
	require.Equal(t, "firing", rec.hooks[1].Status)
	require.Equal(t, "HourglassConsumerDataLoss", rec.hooks[1].Alerts[0].Labels["alertname"])
	n.update(ctx, cfg, snap(20*time.Second, status.DataLoss, status.Stop))
	require.Len(t, rec.hooks, 2, "no resolution while the consumer is still stopped")
	n.update(ctx, cfg, snap(30*time.Second, status.DataLoss))
	require.Len(t, rec.hooks, 3)
	require.Equal(t, "resolved", rec.hooks[2].Status)
	require.Equal(t, "HourglassConsumerStopped", rec.hooks[2].Alerts[0].Labels["alertname"])
}

func TestFreshnessRule(t *testing.T) {
	now := time.Date(2026, 11, 21, 14, 20, 0, 0, time.UTC)
	mt := catalog.Metric{Name: "latency", FreshnessSLA: catalog.Duration{Duration: time.Hour},
		Windows: []catalog.Duration{{Duration: time.Minute}, {Duration: time.Hour}}}
	hour, small := windowSizes(mt)
	require.Equal(t, time.Hour, hour)
	require.Equal(t, time.Minute, small)
	// Due: every hour ending at or before 13:00 (13:20 truncated).
	require.Equal(t, time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC), dueBefore(now, hour, time.Hour))
	at := func(h, m int) time.Time { return time.Date(2026, 11, 21, h, m, 0, 0, time.UTC) }
	docs := metricDocs{
		hourly: map[string]time.Time{"fresh": at(14, 0), "late": at(12, 0), "quiet": at(11, 0),
			"idle": at(11, 0).AddDate(0, 0, -1)}, // traffic yesterday, then again only in the open hour 14:00
		small: map[string]time.Time{
			"fresh": at(12, 59), // before its newest hour: fine
			"late":  at(12, 30), // traffic in hour 12 (due at 14:00), no hourly document
			"quiet": at(10, 59), // no traffic since its last hour: owes nothing
			"new":   at(12, 5),  // traffic, never an hourly document
		},
	}
	f := evaluateFreshness(mt, docs, hour, small, now)
	require.Equal(t, status.Breach, f.Status)
	got := map[string]status.Status{}
	for _, tf := range f.Tenants {
		got[tf.Tenant] = tf.Status
	}
	require.Equal(t, map[string]status.Status{"fresh": status.OK, "late": status.Breach, "quiet": status.OK, "new": status.Breach,
		"idle": status.OK}, got, "idle: no due small window after its newest hour, so no due hour had traffic")

	// A metric without smaller windows has only its hours to go by: the hour
	// after the newest is owed once it is due.
	hourly := catalog.Metric{Name: "daily", FreshnessSLA: catalog.Duration{Duration: time.Hour}, Windows: []catalog.Duration{{Duration: time.Hour}}}
	h, sm := windowSizes(hourly)
	require.Equal(t, h, sm)
	onlyHours := evaluateFreshness(hourly, metricDocs{hourly: map[string]time.Time{"behind": at(12, 0), "ontime": at(13, 0)}}, h, sm, now)
	got = map[string]status.Status{}
	for _, tf := range onlyHours.Tenants {
		got[tf.Tenant] = tf.Status
	}
	require.Equal(t, map[string]status.Status{"behind": status.Breach, "ontime": status.OK}, got)
	require.Equal(t, at(14, 0), *f.Newest)
	// "new" has no hourly window: its newest window end and freshness are
	// null, with the reason beside them; no placeholder date.
	for _, tf := range f.Tenants {
		b, err := json.Marshal(tf)
		require.NoError(t, err)
		if tf.Tenant == "new" {
			require.JSONEq(t, `{"tenant":"new","newest_window_end":null,"freshness_seconds":null,"freshness_unknown_reason":"no_window",
				"status":"BREACH","missing_hour":"2026-11-21T12:00:00Z","input_ahead_seconds":null}`, string(b))
		} else {
			require.NotContains(t, string(b), "freshness_unknown_reason", tf.Tenant)
			require.NotContains(t, string(b), "0001-01-01", tf.Tenant)
		}
	}
	require.Equal(t, status.NoData, evaluateFreshness(mt, metricDocs{missing: true}, hour, small, now).Status)
	require.Equal(t, status.NoData, evaluateFreshness(mt, metricDocs{}, hour, small, now).Status)
	require.Equal(t, status.OK, evaluateFreshness(mt, metricDocs{total: 12}, hour, small, now).Status,
		"documents exist but no hour is due yet: a young pipeline is OK, not NO_DATA")
}

func TestStatusPageRenders(t *testing.T) {
	m := &Monitor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), history: newHistory()}
	st := &state{cfg: DefaultConfig()}
	m.st.Store(st)
	t0 := time.Now()
	for i := range 5 {
		s := &Snapshot{At: t0.Add(time.Duration(i) * time.Second), Poll: uint64(i + 1), Groups: []GroupStatus{{
			Group: "g<script>", Status: status.Warn, SLA: Seconds{time.Hour, true}, TimeLag: Seconds{time.Duration(i) * time.Second, true}, Lag: Known(int64(i)),
			Partitions: []PartitionLag{{Topic: "t", Partition: 0, Lag: Count{}, LagUnknownReason: ReasonReadError, Committed: Count{}, CommittedUnknownReason: ReasonNeverCommitted}},
		}}}
		m.snap.Store(s)
		m.history.add(s, 10*time.Second)
	}
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/status", nil))
	require.Equal(t, http.StatusOK, rr.Code)
	body := rr.Body.String()
	require.Contains(t, body, "<svg")
	require.Contains(t, body, "<polyline")
	require.NotContains(t, body, "<script>", "names are escaped")
	require.NotContains(t, body, "<script ", "no scripts")
	require.Contains(t, body, "unknown")

	rr = httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	var back Snapshot
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &back))
	require.False(t, back.Groups[0].Partitions[0].Lag.Known)
	require.True(t, strings.Contains(rr.Body.String(), `"lag": null`))
	require.True(t, strings.Contains(rr.Body.String(), `"lag_unknown_reason": "offset_read_error"`))
	require.NotContains(t, rr.Body.String(), `"unknown"`, "no string in a numeric field")
}
