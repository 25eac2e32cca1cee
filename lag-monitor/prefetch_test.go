package lagmon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
)

// batchReads is fakeReads that also reads many partitions per request, as
// Fetch answers each, except the partitions cut (answered without a complete
// batch, as Kafka answers those past its size limits) or a whole request
// failing.
type batchReads struct {
	*fakeReads
	requests int
	cut      func(kafkawire.FetchPos) bool
	fail     error
}

func (b *batchReads) FetchMany(_ context.Context, _ string, pos []kafkawire.FetchPos) (map[kafkawire.TopicPartition]*kafkawire.Partition, error) {
	f := b.fakeReads
	f.mu.Lock()
	defer f.mu.Unlock()
	b.requests++
	if b.fail != nil {
		return nil, b.fail
	}
	out := map[kafkawire.TopicPartition]*kafkawire.Partition{}
	for _, p := range pos {
		switch {
		case b.cut != nil && b.cut(p):
			out[p.TopicPartition] = &kafkawire.Partition{HighWatermark: f.end[p.Partition], LastStableOffset: f.end[p.Partition]}
		case f.fetch != nil:
			out[p.TopicPartition] = f.fetch(p.Offset, true)
		default:
			ts := time.Now().Add(-f.recordAge)
			out[p.TopicPartition] = &kafkawire.Partition{HighWatermark: f.end[p.Partition], LastStableOffset: f.end[p.Partition], Batches: []kafkawire.Batch{{
				BaseOffset: p.Offset, LastOffset: p.Offset, Records: []kafkawire.Record{{Offset: p.Offset, Time: ts}}}}}
		}
	}
	return out, nil
}

// manyPartitions: groups g, g2 (committed 10) and g3 (committed 20) on 300
// partitions of "t" holding 100 records each, the records a minute old.
func manyPartitions() *fakeReads {
	const n = 300
	f := &fakeReads{groups: []string{"g", "g2", "g3"}, partitions: n, logStart: map[int]int64{}, end: map[int]int64{},
		committed: map[string]map[string]map[int]committedOffset{"g": {"t": {}}, "g2": {"t": {}}, "g3": {"t": {}}}, recordAge: time.Minute}
	for p := range n {
		f.end[p] = 100
		f.committed["g"]["t"][p] = committedOffset{offset: 10}
		f.committed["g2"]["t"][p] = committedOffset{offset: 10}
		f.committed["g3"]["t"][p] = committedOffset{offset: 20}
	}
	return f
}

func pollAll(t *testing.T, m *Monitor, n uint64) []GroupStatus {
	t.Helper()
	groups, _, errs := m.pollKafka(context.Background(), m.st.Load(), n)
	require.Empty(t, errs)
	require.Len(t, groups, 3)
	m.snap.Store(&Snapshot{Poll: n, Groups: groups})
	return groups
}

func requireTimeLags(t *testing.T, groups []GroupStatus) {
	t.Helper()
	for _, g := range groups {
		require.Len(t, g.Partitions, 300, g.Group)
		for _, p := range g.Partitions {
			require.True(t, p.TimeLag.Known, "%s %s/%d: %s", g.Group, p.Topic, p.Partition, p.Error)
			require.InDelta(t, 60, p.TimeLag.D.Seconds(), 2, "%s %s/%d", g.Group, p.Topic, p.Partition)
		}
		require.Equal(t, Known(300*(100-g.Partitions[0].Committed.N)), g.Lag, g.Group)
	}
}

// Issue 16: the time lags of 3 groups × 300 partitions at 600 distinct
// positions take 6 requests (128 partitions each, one position per
// partition per request), not 600 fetches; the look-ups count as before
// (600 fetched, 300 answered from the cache), and the next poll reads
// nothing.
func TestPrefetchReadsManyPartitionsPerRequest(t *testing.T) {
	b := &batchReads{fakeReads: manyPartitions()}
	m, reg := newPollMonitor(t, b, nil)
	requireTimeLags(t, pollAll(t, m, 1))
	require.Equal(t, 6, b.requests)
	require.Zero(t, b.fetches, "no position read alone")
	require.InDelta(t, 600, testutil.ToFloat64(m.metrics.tsFetches.WithLabelValues("fetched")), 0)
	require.InDelta(t, 300, testutil.ToFloat64(m.metrics.tsFetches.WithLabelValues("cached")), 0)

	requireTimeLags(t, pollAll(t, m, 2))
	require.Equal(t, 6, b.requests, "cached: nothing read")
	require.InDelta(t, 1200, testutil.ToFloat64(m.metrics.tsFetches.WithLabelValues("cached")), 0)
	n, err := testutil.GatherAndCount(reg, "hourglass_consumer_lag_seconds")
	require.NoError(t, err)
	require.Equal(t, 900, n)
}

// What a request does not settle is read alone, as without prefetching: a
// partition cut by the size limits, every partition of a failed request.
func TestPrefetchFallsBackToSingleReads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(*batchReads)
		single int // positions not settled by a request
	}{
		{"odd partitions cut", func(b *batchReads) { b.cut = func(p kafkawire.FetchPos) bool { return p.Partition%2 == 1 } }, 300},
		{"requests fail", func(b *batchReads) { b.fail = errors.New("connection reset by peer") }, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &batchReads{fakeReads: manyPartitions()}
			tc.tweak(b)
			m, _ := newPollMonitor(t, b, nil)
			requireTimeLags(t, pollAll(t, m, 1))
			// Two groups at one position may both read it alone (as without
			// prefetching): at least one read per position.
			require.GreaterOrEqual(t, b.fetches, tc.single, "positions read alone")
			require.InDelta(t, 600-tc.single+b.fetches, testutil.ToFloat64(m.metrics.tsFetches.WithLabelValues("fetched")), 0,
				"each read counted once, by a request or alone")
			require.Zero(t, testutil.ToFloat64(m.metrics.tsFetches.WithLabelValues("error")))
		})
	}
}

// Transaction markers only, read many per request: caught up as when read
// alone (TestPollOnlyControlRecordsIsCaughtUp), and cached.
func TestPrefetchOnlyControlRecords(t *testing.T) {
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
	b := &batchReads{fakeReads: f}
	m, _ := newPollMonitor(t, b, nil)
	for n := uint64(1); n <= 3; n++ {
		g := pollGroup(t, m, n)
		require.Equal(t, Known(0), g.Lag)
		require.True(t, g.Partitions[0].OnlyControlRecords)
	}
	require.Equal(t, 1, b.requests)
	require.Zero(t, f.fetches)
}
