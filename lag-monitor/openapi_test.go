package lagmon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/openapitest"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// unreadableRecords is a broker whose records cannot be fetched: time lags
// are unknown (timestamp_read_error).
type unreadableRecords struct{ *fakeReads }

func (unreadableRecords) Fetch(context.Context, string, string, int, int64, int32, bool) (*kafkawire.Partition, error) {
	return nil, errors.New("fetch: connection reset")
}

// TestOpenAPIMatchesResponses serves the monitor as hourglass lagmon does
// (Handler mounted at Paths on the admin server) and checks every answer
// against the document: /v1/status before the first poll, after polls that
// read everything, and after polls whose reads failed or contradicted each
// other (nulls with reasons), with freshness, dropped records and job runs
// from the monitor's own rules; /status, /metrics, /healthz, /readyz.
func TestOpenAPIMatchesResponses(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.CatalogPath = ""
	cfg.Allow = []string{"^g"}
	cfg.PollInterval, cfg.Window = 100*time.Millisecond, time.Second
	cfg.AutoOffsetResetOverrides = []ResetOverride{{Group: "^g-latest$", Reset: status.Latest}}
	reg := prometheus.NewRegistry()
	m, err := New(func() (Config, error) { return cfg, nil }, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	m.commits = nil // commit times come from __consumer_offsets: no broker here
	f := &fakeReads{groups: []string{"g", "g-new", "g-latest"}, partitions: 2,
		logStart: map[int]int64{0: 0, 1: 0}, end: map[int]int64{0: 130, 1: 50},
		committed: map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 100}, 1: {offset: 50}}}},
		members: map[string]groupInfo{"g": {state: "Stable", protocolType: "consumer", topics: []string{"t"}, members: []GroupMember{
			{MemberID: "m1", InstanceID: "i1", ClientID: "c1", ClientHost: "/10.0.0.1", Subscribed: []string{"t"}, Assigned: map[string][]int32{"t": {0, 1}}}}},
			"g-new": {state: "Stable", protocolType: "consumer", topics: []string{"t"}, members: []GroupMember{
				{MemberID: "m2", ClientID: "c2", ClientHost: "/10.0.0.2", Subscribed: []string{"t"}, Assigned: map[string][]int32{"t": {0, 1}}}}},
			"g-latest": {state: "Stable", protocolType: "consumer", topics: []string{"t"}, members: []GroupMember{
				{MemberID: "m3", ClientID: "c3", ClientHost: "/10.0.0.3", Subscribed: []string{"t"}, Assigned: map[string][]int32{}, Error: "assignment: unknown version 9"}}}},
		recordAge: 3 * time.Second}
	m.reads = f

	ready := atomic.Pointer[error]{}
	admin := telemetry.NewAdmin("127.0.0.1:0", reg)
	require.NoError(t, admin.Listen())
	admin.AddCheck("kafka", func(context.Context) error {
		if e := ready.Load(); e != nil {
			return *e
		}
		return nil
	})
	for _, p := range Paths {
		admin.Handle(p, m.Handler())
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- admin.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	base := "http://" + admin.Addr()
	fetch := func(path string) (*http.Request, *http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return req, res, b
	}
	seen := map[string]bool{} // known bugs that occurred
	get := func(path string, want int) []byte {
		t.Helper()
		req, res, b := fetch(path)
		require.Equal(t, want, res.StatusCode, "%s: %s", path, b)
		for _, bug := range onlyKnownBugs(t, spec.Validate(req, res, b), b) {
			seen[bug] = true
		}
		return b
	}

	get("/v1/status", http.StatusOK) // before the first poll
	poll := func() *Snapshot {
		t.Helper()
		m.poll(context.Background())
		get("/v1/status", http.StatusOK)
		get("/status", http.StatusOK)
		return m.Snapshot()
	}
	// Everything read: lags known, a group that never committed (earliest:
	// counted from the log start; latest: null, never_committed).
	s := poll()
	require.Len(t, s.Groups, 3)
	byName := func(s *Snapshot, g string) GroupStatus {
		for _, gs := range s.Groups {
			if gs.Group == g {
				return gs
			}
		}
		t.Fatalf("group %s not reported", g)
		return GroupStatus{}
	}
	require.Equal(t, Known(30), byName(s, "g").Lag)
	require.Equal(t, status.Uncommitted, byName(s, "g-new").Status)
	require.Equal(t, ReasonNeverCommitted, byName(s, "g-latest").LagUnknownReason)

	// A partition's end offset not read: its offsets and lag null
	// (offset_read_error), the groups' lag null.
	f.mu.Lock()
	f.offsetsHook = func(kind string, res map[int]int64, _ map[int]error) error {
		if kind == "end" {
			delete(res, 1)
		}
		return nil
	}
	f.mu.Unlock()
	s = poll()
	require.False(t, byName(s, "g").Lag.Known)
	require.Equal(t, ReasonReadError, byName(s, "g").Partitions[1].OffsetsUnknownReason)

	// Reads that contradict each other: inconsistent_read.
	f.mu.Lock()
	f.offsetsHook = func(kind string, res map[int]int64, _ map[int]error) error {
		if kind == "end" || kind == "last_stable" {
			res[0] = 50 // committed is 100
		}
		return nil
	}
	f.mu.Unlock()
	s = poll()
	require.Equal(t, ReasonInconsistent, byName(s, "g").LagUnknownReason)

	// Offsets read, the records not: time lags null (timestamp_read_error).
	f.mu.Lock()
	f.offsetsHook = nil
	f.end[0] = 140
	f.committed["g"]["t"][0] = committedOffset{offset: 110}
	f.mu.Unlock()
	m.reads = unreadableRecords{f}
	s = poll()
	require.Equal(t, ReasonTimestampReadError, byName(s, "g").TimeLagUnknownReason)
	m.reads = f

	// Freshness, dropped records and job runs as the monitor's rules make
	// them from Elasticsearch's answers (no Elasticsearch here).
	now := time.Now().UTC().Truncate(time.Minute)
	mt := catalog.Metric{Name: "latency", FreshnessSLA: catalog.Duration{Duration: time.Hour},
		AllowedLateness: catalog.Duration{Duration: 10 * time.Minute},
		Windows:         []catalog.Duration{{Duration: time.Minute}, {Duration: time.Hour}}}
	hour := now.Truncate(time.Hour)
	fresh := evaluateFreshness(mt, metricDocs{
		hourly: map[string]time.Time{"fresh": hour, "late": hour.Add(-3 * time.Hour)},
		small:  map[string]time.Time{"late": hour.Add(-2 * time.Hour), "new": hour.Add(-2 * time.Hour)},
		total:  10,
	}, time.Hour, time.Minute, now)
	mi := (&inputTracker{}).metric(mt.Name)
	for _, tenant := range []string{"fresh", "late", "frozen"} {
		mi.add(tenant, fmt.Appendf(nil, `{"timestamp":%q}`, now.Add(-time.Minute).Format(time.RFC3339)), time.Minute, now)
	}
	applyInput(&fresh, mi, map[string]time.Time{"fresh": now.Add(-time.Minute), "late": hour.Add(-2 * time.Hour)}, time.Minute, 10*time.Minute, 5*time.Minute)
	noData := evaluateFreshness(catalog.Metric{Name: "errors", FreshnessSLA: catalog.Duration{Duration: time.Hour},
		Windows: []catalog.Duration{{Duration: time.Hour}}}, metricDocs{missing: true}, time.Hour, time.Hour, now)
	failedMt := mt
	failedMt.Name = "bandwidth"
	failed := evaluateFreshness(failedMt, metricDocs{err: errors.New("503 from the cluster")}, time.Hour, time.Minute, now)
	dropped := boundTenants(dropCounts{late: map[string]int64{"a": 5, "b": 1}, outOfRange: map[string]int64{"c": 2},
		windows: map[string]int64{"a": 95, "b": 0, "c": 0}, lateTotal: 6, oorTotal: 2, windowTotal: 95}, 1)
	dropped.Metric, dropped.Index = mt.Name, catalog.LateIndex(mt.Name)
	quiet := boundTenants(dropCounts{}, 1)
	quiet.Metric, quiet.Index, quiet.Error = "errors", catalog.LateIndex("errors"), "dropped records of errors: timeout"
	full := *s
	full.Freshness = []MetricFreshness{fresh, noData, failed}
	full.Dropped = []MetricDropped{dropped, quiet}
	full.JobRuns = []JobRunStatus{
		{Metric: "latency", Hour: "2026-11-21T13", Start: now.Add(-time.Hour), Duration: Seconds{70 * time.Minute, true}, Records: 1200, Outcome: "running",
			Overrun: true, Advice: "the run takes longer than its period: give it more executors"},
		{Metric: "errors", Hour: "2026-11-21T12", Start: now.Add(-2 * time.Hour), Duration: Seconds{5 * time.Minute, true}, Records: 0, Outcome: "succeeded"},
	}
	full.Errors = append(full.Errors, failed.Error, quiet.Error)
	m.snap.Store(&full)
	b := get("/v1/status", http.StatusOK)
	require.Contains(t, string(b), `"freshness_seconds": null`)
	require.Contains(t, string(b), `"input_ahead_unknown_reason": "no_input_seen"`)
	require.Contains(t, string(b), `"late_share": null`)
	// The drift this guards against: "unknown" where a count belongs.
	req, res, _ := fetch("/v1/status")
	drift := bytes.Replace(b, []byte(`"lag": null`), []byte(`"lag": "unknown"`), 1)
	require.NotEqual(t, b, drift)
	require.ErrorContains(t, spec.Validate(req, res, drift), "value must be an integer")
	get("/status", http.StatusOK)

	get("/openapi.json", http.StatusOK)
	get("/metrics", http.StatusOK)
	get("/healthz", http.StatusOK)
	get("/readyz", http.StatusOK)
	notReady := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	ready.Store(&notReady)
	get("/readyz", http.StatusServiceUnavailable)

	require.Empty(t, spec.Uncovered(), "documented answers no test gave")
	for bug := range knownBugs {
		require.True(t, seen[bug], "known bug %q no longer occurs: delete it from knownBugs", bug)
	}
}

// knownBugs are the answers of /v1/status that contradict the document
// because the monitor is wrong (one JSON type per field), reported and not
// fixed yet: the document says what the answer must be, and these pointers
// are excused until then. Each must still occur, so a fix makes the test
// say to delete its entry.
var knownBugs = map[string]*regexp.Regexp{}

// onlyKnownBugs fails the test unless every problem of err (from
// Spec.Validate) is at a pointer of knownBugs, and returns the bugs seen.
func onlyKnownBugs(t *testing.T, err error, body []byte) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []*openapi3.SchemaError
	var flatten func(error)
	flatten = func(e error) {
		var me openapi3.MultiError
		var se *openapi3.SchemaError
		switch {
		case errors.As(e, &me):
			for _, x := range me {
				flatten(x)
			}
		case errors.As(e, &se):
			errs = append(errs, se)
		default:
			t.Fatalf("not a schema mismatch: %v\n%s", e, body)
		}
	}
	flatten(err)
	var bugs []string
	for _, se := range errs {
		ptr := "/" + strings.Join(se.JSONPointer(), "/")
		known := ""
		for bug, re := range knownBugs {
			if re.MatchString(ptr) {
				known = bug
			}
		}
		require.NotEmpty(t, known, "%s: %s\n%s", ptr, se.Reason, body)
		bugs = append(bugs, known)
	}
	return bugs
}
