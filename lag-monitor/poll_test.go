package lagmon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// fakeReads is a broker with one topic "t" whose offsets the test sets, and
// hooks that make single reads fail or race.
type fakeReads struct {
	mu         sync.Mutex
	groups     []string
	committed  map[string]map[string]map[int]committedOffset // group → topic → partition
	members    map[string]groupInfo
	partitions int
	logStart   map[int]int64
	end        map[int]int64
	recordAge  time.Duration // the record at any offset is this old

	committedErr error
	metadataErr  error
	// offsetsHook may change one ListOffsets answer (kind: log_start,
	// last_stable or end) or fail it.
	offsetsHook func(kind string, res map[int]int64, failed map[int]error) error
}

func (f *fakeReads) ListGroups(context.Context) ([]string, error) { return f.groups, nil }

func (f *fakeReads) Committed(_ context.Context, group string) (map[string]map[int]committedOffset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.committedErr != nil {
		return nil, f.committedErr
	}
	out := map[string]map[int]committedOffset{}
	for t, ps := range f.committed[group] {
		out[t] = map[int]committedOffset{}
		for p, c := range ps {
			out[t][p] = c
		}
	}
	return out, nil
}

func (f *fakeReads) DescribeGroups(_ context.Context, groups []string) (map[string]groupInfo, error) {
	out := map[string]groupInfo{}
	for _, g := range groups {
		if gi, ok := f.members[g]; ok {
			out[g] = gi
		}
	}
	return out, nil
}

func (f *fakeReads) Metadata(_ context.Context, topics []string) (map[string]kafkawire.TopicMeta, error) {
	if f.metadataErr != nil {
		return nil, f.metadataErr
	}
	out := map[string]kafkawire.TopicMeta{}
	for _, t := range topics {
		if t != "t" {
			continue
		}
		tm := kafkawire.TopicMeta{Name: t}
		for p := range f.partitions {
			tm.Partitions = append(tm.Partitions, kafkawire.PartitionMeta{ID: p, Leader: "leader:9092"})
		}
		out[t] = tm
	}
	return out, nil
}

func (f *fakeReads) ListOffsets(_ context.Context, _, _ string, partitions []int, which int64, readCommitted bool) (map[int]int64, map[int]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := "end"
	switch {
	case which == kafkawire.Earliest:
		kind = "log_start"
	case readCommitted:
		kind = "last_stable"
	}
	res, failed := map[int]int64{}, map[int]error{}
	for _, p := range partitions {
		if kind == "log_start" {
			res[p] = f.logStart[p]
		} else {
			res[p] = f.end[p]
		}
	}
	if f.offsetsHook != nil {
		if err := f.offsetsHook(kind, res, failed); err != nil {
			return nil, nil, err
		}
	}
	return res, failed, nil
}

func (f *fakeReads) Fetch(_ context.Context, _, _ string, _ int, offset int64, _ int32) (*kafkawire.Partition, error) {
	ts := time.Now().Add(-f.recordAge)
	return &kafkawire.Partition{HighWatermark: offset + 1, LastStableOffset: offset + 1, Batches: []kafkawire.Batch{{
		BaseOffset: offset, LastOffset: offset, Records: []kafkawire.Record{{Offset: offset, Time: ts}}}}}, nil
}

func newPollMonitor(t *testing.T, reads brokerReader, tweak func(*Config)) (*Monitor, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CatalogPath = ""
	cfg.Allow = []string{"^g"}
	cfg.PollInterval, cfg.Window = 100*time.Millisecond, time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	require.NoError(t, cfg.Validate())
	f, err := compileFilter(cfg)
	require.NoError(t, err)
	m := &Monitor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, reads: reads,
		rings: map[ringKey][]status.Sample{}, base: map[ringKey]int64{}, tsCache: map[tsKey]tsEntry{}}
	m.st.Store(&state{cfg: cfg, filter: f})
	reg := prometheus.NewRegistry()
	m.metrics = newMetrics(reg, m)
	m.history = newHistory()
	return m, reg
}

// pollGroup runs one poll and returns the group g (failing if absent).
func pollGroup(t *testing.T, m *Monitor, n uint64) GroupStatus {
	t.Helper()
	groups, _, _ := m.pollKafka(context.Background(), m.st.Load(), n)
	m.snap.Store(&Snapshot{Poll: n, Groups: groups})
	for _, g := range groups {
		if g.Group == "g" {
			return g
		}
	}
	t.Fatalf("group g not reported: %+v", groups)
	return GroupStatus{}
}

// Issue 20, case 3: a poll whose offset read fails or races reports the
// lag unknown (null with a reason, counted), never 0, and the status is
// never OK; the polls around it report the lag they read (30, then 70).
func TestPollFailedOffsetReadIsUnknownNotZero(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(f *fakeReads)
		kind   string // of hourglass_lagmon_offset_read_errors_total
		reason string
	}{
		{name: "end offsets request fails", kind: "end", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.offsetsHook = func(kind string, _ map[int]int64, _ map[int]error) error {
				if kind == "end" {
					return errors.New("connection reset by peer")
				}
				return nil
			}
		}},
		{name: "partition missing from the end answer", kind: "end", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.offsetsHook = func(kind string, res map[int]int64, _ map[int]error) error {
				if kind == "end" {
					delete(res, 0)
				}
				return nil
			}
		}},
		{name: "partition answered with an error code", kind: "end", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.offsetsHook = func(kind string, res map[int]int64, failed map[int]error) error {
				if kind == "end" {
					delete(res, 0)
					failed[0] = kafka.NotLeaderForPartition
				}
				return nil
			}
		}},
		{name: "log start read fails", kind: "log_start", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.offsetsHook = func(kind string, _ map[int]int64, _ map[int]error) error {
				if kind == "log_start" {
					return errors.New("timeout")
				}
				return nil
			}
		}},
		{name: "end read behind the committed offset (stale answer)", kind: "inconsistent", reason: ReasonInconsistent, inject: func(f *fakeReads) {
			f.offsetsHook = func(kind string, res map[int]int64, _ map[int]error) error {
				if kind == "end" || kind == "last_stable" {
					res[0] = 50 // committed is 100
				}
				return nil
			}
		}},
		{name: "committed offset answered with an error", kind: "committed", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.committed["g"]["t"][0] = committedOffset{offset: -1, err: kafka.GroupLoadInProgress}
		}},
		{name: "committed offsets request fails", kind: "committed", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.committedErr = kafka.GroupCoordinatorNotAvailable
		}},
		{name: "metadata fails", kind: "metadata", reason: ReasonReadError, inject: func(f *fakeReads) {
			f.metadataErr = errors.New("no broker answers")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeReads{groups: []string{"g"}, partitions: 1, logStart: map[int]int64{0: 0}, end: map[int]int64{0: 130},
				committed: map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 100}}}}, recordAge: time.Second}
			m, reg := newPollMonitor(t, f, nil)

			g := pollGroup(t, m, 1)
			require.Equal(t, Known(30), g.Lag)
			require.Equal(t, Known(30), g.Partitions[0].Lag)

			f.mu.Lock()
			tc.inject(f)
			f.mu.Unlock()
			g = pollGroup(t, m, 2)
			require.False(t, g.Lag.Known, "group lag of a poll that did not read it: %+v", g)
			require.Equal(t, tc.reason, g.LagUnknownReason)
			require.False(t, g.MaxLag.Known)
			require.NotEqual(t, status.OK, g.Status, "unknown is never OK")
			require.Contains(t, g.Conditions, status.Unknown)
			require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.offsetReadErrors.WithLabelValues(tc.kind)), "read errors of kind %s", tc.kind)
			for _, p := range g.Partitions {
				require.False(t, p.Lag.Known, "partition %d: lag %d reported from a failed read", p.Partition, p.Lag.N)
				require.Equal(t, tc.reason, p.LagUnknownReason)
				require.NotEqual(t, status.OK, p.Status)
			}
			// No lag series at all for the partition (absent, not 0).
			n, err := testutil.GatherAndCount(reg, "hourglass_consumer_lag_records")
			require.NoError(t, err)
			require.Zero(t, n)
			b, err := m.snap.Load().Groups[0].Lag.MarshalJSON()
			require.NoError(t, err)
			require.Equal(t, "null", string(b))

			// The next good poll reads the lag again: 70.
			f.mu.Lock()
			f.offsetsHook, f.committedErr, f.metadataErr = nil, nil, nil
			f.committed["g"]["t"][0] = committedOffset{offset: 100}
			f.end[0] = 170
			f.mu.Unlock()
			g = pollGroup(t, m, 3)
			require.Equal(t, Known(70), g.Lag)
			require.Empty(t, g.LagUnknownReason)
		})
	}
}

// A group that never committed: its lag counts the records from its start
// position (earliest: log start) and it is UNCOMMITTED, not OK; an empty
// partition is OK with lag 0; with latest the lag is unknown (null) and
// records arriving while it is watched make it UNCOMMITTED.
func TestPollNeverCommitted(t *testing.T) {
	f := &fakeReads{groups: []string{"g"}, partitions: 2, logStart: map[int]int64{0: 20, 1: 0}, end: map[int]int64{0: 320, 1: 0},
		committed: map[string]map[string]map[int]committedOffset{}, members: map[string]groupInfo{"g": {state: "Stable", members: 1, topics: []string{"t"}}},
		recordAge: 10 * time.Second}
	m, reg := newPollMonitor(t, f, nil)
	g := pollGroup(t, m, 1)
	require.Equal(t, status.Uncommitted, g.Status)
	require.Equal(t, Known(300), g.Lag)
	require.Len(t, g.Partitions, 2)
	p0, p1 := g.Partitions[0], g.Partitions[1]
	require.False(t, p0.Committed.Known)
	require.Equal(t, ReasonNeverCommitted, p0.CommittedUnknownReason)
	require.Equal(t, Known(300), p0.Lag)
	require.True(t, p0.TimeLag.Known)
	require.InDelta(t, 10, p0.TimeLag.D.Seconds(), 1, "time lag of the record at the log start")
	require.Equal(t, status.Uncommitted, p0.Status)
	require.Equal(t, status.OK, p1.Status, "nothing to read, nothing owed")
	require.Equal(t, Known(0), p1.Lag)
	n, err := testutil.GatherAndCount(reg, "hourglass_consumer_lag_records")
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// Starting at latest: the position is unknown, so is the lag; the old
	// records are not its work (OK) until more arrive.
	m, _ = newPollMonitor(t, f, func(c *Config) {
		c.AutoOffsetResetOverrides = []ResetOverride{{Group: "^g$", Reset: status.Latest}}
	})
	g = pollGroup(t, m, 1)
	require.Equal(t, status.Latest, g.Reset)
	require.False(t, g.Lag.Known)
	require.Equal(t, ReasonNeverCommitted, g.LagUnknownReason)
	require.Equal(t, status.OK, g.Status)
	f.mu.Lock()
	f.end[0] = 330
	f.mu.Unlock()
	g = pollGroup(t, m, 2)
	require.Equal(t, status.Uncommitted, g.Status)
	require.False(t, g.Lag.Known)
}
