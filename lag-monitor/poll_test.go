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
	"github.com/segmentio/kafka-go/protocol/describegroups"
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
	lastStable map[int]int64 // nil: the end
	// fetch, when set, answers Fetch (offset, isolation); fetches counts them.
	fetch   func(offset int64, readCommitted bool) *kafkawire.Partition
	fetches int

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
		switch {
		case kind == "log_start":
			res[p] = f.logStart[p]
		case kind == "last_stable" && f.lastStable != nil:
			res[p] = f.lastStable[p]
		default:
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

func (f *fakeReads) Fetch(_ context.Context, _, _ string, _ int, offset int64, _ int32, readCommitted bool) (*kafkawire.Partition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if f.fetch != nil {
		return f.fetch(offset, readCommitted), nil
	}
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
		committed: map[string]map[string]map[int]committedOffset{}, members: map[string]groupInfo{"g": {state: "Stable", members: []GroupMember{{MemberID: "m1", ClientID: "c1", Assigned: map[string][]int32{"t": {0, 1}}}}, topics: []string{"t"}}},
		recordAge: 10 * time.Second}
	m, reg := newPollMonitor(t, f, nil)
	g := pollGroup(t, m, 1)
	require.Equal(t, status.Uncommitted, g.Status)
	require.Equal(t, Known(300), g.Lag)
	require.Len(t, g.Partitions, 2)
	require.Equal(t, 1, g.Members)
	require.Equal(t, 2, g.UncommittedPartitions)
	require.Equal(t, "c1", g.Partitions[0].ClientID, "the member the partition is assigned to")
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

// Issue 20, case 1: only transaction markers after the committed offset.
// The partition is caught up (lag 0, OK, never STOP over a window), and the
// answer is cached: later polls fetch nothing while the offsets stay.
func TestPollOnlyControlRecordsIsCaughtUp(t *testing.T) {
	// Committed 10 (after the last data record); 10, 11, 12 are commit markers.
	f := &fakeReads{groups: []string{"g"}, partitions: 1, logStart: map[int]int64{0: 0}, end: map[int]int64{0: 13},
		committed: map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 10}}}}}
	f.fetch = func(offset int64, _ bool) *kafkawire.Partition {
		p := &kafkawire.Partition{HighWatermark: 13, LastStableOffset: 13}
		for o := offset; o < 13; o++ {
			p.Batches = append(p.Batches, kafkawire.Batch{BaseOffset: o, LastOffset: o, ProducerID: 7, Transactional: true, Control: true,
				Records: []kafkawire.Record{{Offset: o}}})
		}
		return p
	}
	m, reg := newPollMonitor(t, f, nil)
	clock := time.Now()
	m.now = func() time.Time { return clock }
	var g GroupStatus
	for n := uint64(1); n <= 15; n++ { // 100 ms apart: the 1 s window is covered
		clock = clock.Add(100 * time.Millisecond)
		g = pollGroup(t, m, n)
		require.Equal(t, status.OK, g.Status, "poll %d: %v", n, g.Conditions)
		require.Equal(t, Known(0), g.Lag)
		require.True(t, g.Partitions[0].OnlyControlRecords)
		require.Equal(t, Seconds{0, true}, g.Partitions[0].TimeLag)
	}
	require.Equal(t, 1, f.fetches, "cached after the first poll")
	v, err := testutil.GatherAndCount(reg, "hourglass_consumer_lag_records")
	require.NoError(t, err)
	require.Equal(t, 1, v)

	// A data record arrives after the markers: the cache reads on from the
	// last stable offset it had, and the lag is the records' again.
	f.mu.Lock()
	f.end[0] = 14
	f.fetch = func(offset int64, _ bool) *kafkawire.Partition {
		p := &kafkawire.Partition{HighWatermark: 14, LastStableOffset: 14}
		for o := offset; o < 13; o++ {
			p.Batches = append(p.Batches, kafkawire.Batch{BaseOffset: o, LastOffset: o, Control: true, Records: []kafkawire.Record{{Offset: o}}})
		}
		p.Batches = append(p.Batches, kafkawire.Batch{BaseOffset: 13, LastOffset: 13, Records: []kafkawire.Record{{Offset: 13, Time: time.Now().Add(-time.Minute)}}})
		return p
	}
	f.mu.Unlock()
	clock = time.Now()
	g = pollGroup(t, m, 16)
	require.False(t, g.Partitions[0].OnlyControlRecords)
	require.Equal(t, Known(4), g.Lag, "offsets, markers between data records included (as Kafka counts them)")
	require.InDelta(t, 60, g.TimeLag.D.Seconds(), 2)
	require.Equal(t, 2, f.fetches, "one fetch, from where the cache stopped")
}

// Issue 20, case 2: a read_committed group at the last stable offset with
// an open transaction after it: lag 0, the open transaction reported with
// its records and age (OPEN_TRANSACTION once older than the threshold), not
// STALL or STOP. The same group configured read_uncommitted has the records
// as its lag.
func TestPollOpenTransaction(t *testing.T) {
	f := &fakeReads{groups: []string{"g"}, partitions: 1, logStart: map[int]int64{0: 0}, end: map[int]int64{0: 120},
		lastStable: map[int]int64{0: 100},
		committed:  map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 100}}}}}
	opened := time.Now().Add(-3 * time.Minute)
	f.fetch = func(offset int64, readCommitted bool) *kafkawire.Partition {
		p := &kafkawire.Partition{HighWatermark: 120, LastStableOffset: 100}
		if !readCommitted && offset == 100 {
			p.Batches = []kafkawire.Batch{{BaseOffset: 100, LastOffset: 119, ProducerID: 9, Transactional: true,
				Records: []kafkawire.Record{{Offset: 100, Time: opened}}}}
		}
		return p
	}
	m, reg := newPollMonitor(t, f, nil)
	clock := time.Now()
	m.now = func() time.Time { return clock }
	var g GroupStatus
	for n := uint64(1); n <= 15; n++ { // 100 ms apart: the 1 s window is covered
		clock = clock.Add(100 * time.Millisecond)
		g = pollGroup(t, m, n)
		require.Equal(t, status.OpenTransaction, g.Status, "poll %d: %v", n, g.Conditions)
		require.Equal(t, []status.Status{status.OpenTransaction}, g.Conditions)
	}
	p := g.Partitions[0]
	require.Equal(t, Known(0), p.Lag)
	require.Equal(t, int64(20), p.OpenTxnRecords)
	require.True(t, p.OpenTxnAge.Known)
	require.InDelta(t, 181.5, p.OpenTxnAge.D.Seconds(), 1)
	require.Equal(t, ReadCommitted, g.Isolation)
	v, err := testutil.GatherAndCount(reg, "hourglass_consumer_open_transaction_age_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, v)

	// Younger than open_transaction_after: reported, not a condition.
	m, _ = newPollMonitor(t, f, func(c *Config) { c.OpenTxnAfter = time.Hour })
	g = pollGroup(t, m, 1)
	require.Equal(t, status.OK, g.Status)
	require.Equal(t, int64(20), g.Partitions[0].OpenTxnRecords)

	// read_uncommitted: the open transaction's records are its lag.
	m, _ = newPollMonitor(t, f, func(c *Config) {
		c.IsolationLevelOverrides = []IsolationOverride{{Group: "^g$", Isolation: ReadUncommitted}}
	})
	g = pollGroup(t, m, 1)
	require.Equal(t, Known(20), g.Lag)
	require.Zero(t, g.Partitions[0].OpenTxnRecords)
	require.NotContains(t, g.Conditions, status.OpenTransaction)
}

// Issue 21: a member whose consumer-protocol bytes cannot be decoded is
// counted in hourglass_lagmon_group_decode_errors_total and reported on the
// group (error, UNKNOWN), never skipped; members of current clients (v3)
// decode with their client ids and assignments.
func TestDecodeGroupMembers(t *testing.T) {
	sub := func(v int16, topics ...string) []byte {
		b := []byte{byte(v >> 8), byte(v)}
		b = append(b, 0, 0, 0, byte(len(topics)))
		for _, t := range topics {
			b = append(b, 0, byte(len(t)))
			b = append(b, t...)
		}
		b = append(b, 0xff, 0xff, 0xff, 0xff) // user data: null
		if v >= 1 {
			b = append(b, 0, 0, 0, 0) // owned partitions: none
		}
		if v >= 2 {
			b = append(b, 0, 0, 0, 5) // generation
		}
		if v >= 3 {
			b = append(b, 0xff, 0xff) // rack: null
		}
		return b
	}
	assign := []byte{0, 3, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}
	counts := map[string]int{}
	gi := decodeGroup(describegroups.ResponseGroup{GroupID: "g", GroupState: "Stable", ProtocolType: "consumer",
		Members: []describegroups.ResponseGroupMember{
			{MemberID: "m1", ClientID: "java-3.9", MemberMetadata: sub(3, "t"), MemberAssignment: assign},
			{MemberID: "m2", ClientID: "rdkafka", MemberMetadata: sub(1, "t", "u")},
			{MemberID: "m3", ClientID: "broken", MemberMetadata: []byte{0, 3, 0, 0, 0, 9}},
		}}, func(kind string) { counts[kind]++ })
	require.Len(t, gi.members, 3)
	require.Equal(t, map[string][]int32{"t": {0, 1}}, gi.members[0].Assigned)
	require.Equal(t, []string{"t", "u"}, gi.members[1].Subscribed)
	require.Equal(t, []string{"t", "u"}, gi.topics)
	require.NotEmpty(t, gi.members[2].Error)
	require.ErrorIs(t, gi.err, kafkawire.ErrConsumerProtocol)
	require.Equal(t, map[string]int{"subscription": 1}, counts)

	// In a poll: the group carries the error and is UNKNOWN, members counted.
	f := &fakeReads{groups: []string{"g"}, partitions: 1, logStart: map[int]int64{0: 0}, end: map[int]int64{0: 5},
		committed: map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 5}}}},
		members:   map[string]groupInfo{"g": gi}}
	m, _ := newPollMonitor(t, f, nil)
	g := pollGroup(t, m, 1)
	require.Equal(t, 3, g.Members)
	require.Contains(t, g.Error, "malformed consumer protocol data")
	require.Contains(t, g.Conditions, status.Unknown)
	require.Equal(t, "java-3.9", g.Partitions[0].ClientID)
}
