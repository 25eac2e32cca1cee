//go:build bench

package lagmon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
)

// Workload of TestBenchLagmonPoll (issue 16: "one poll of 1 000 partitions ×
// 10 groups ≤ 2 s, memory flat over 100 polls").
const (
	benchTopics     = 4
	benchPartitions = 250 // per topic: 1 000 in all
	benchGroups     = 10
	benchRecords    = 5 // per partition
	benchPolls      = 100
	// benchInterval is the poll interval: short, so 100 polls take about a
	// minute, and long enough that the heap is read between polls.
	benchInterval = 250 * time.Millisecond
	// benchWindow holds at most 10 samples per partition, so every ring has
	// reached its steady length by poll 10, the first heap reading: what
	// grows after it is not the window filling up (production, 15 s / 5 m,
	// keeps 21 samples).
	benchWindow = 9 * benchInterval
	// pollBudget is issue 16's goal for one poll.
	pollBudget = 2 * time.Second
	// heapSlack: "memory flat" means the live heap after poll 100 is within
	// 10 % (or 4 MiB, whichever is larger) of the live heap after poll 10.
	heapSlackRatio = 0.10
	heapSlackBytes = 4 << 20
)

// TestBenchLagmonPoll: one lag monitor watching 10 groups, each committed on
// all 1 000 partitions of 4 topics (250 each, 5 records per partition), on
// the local stack's Kafka. Group g commits offset g mod 6: nine groups lag on
// every partition, at 5 distinct positions per partition, so a poll that
// finds them all new (the first one; in production, any poll after every
// consumer moved) reads 5 000 record timestamps.
// Freshness and alerts are off (no es_urls, no receivers). Each repetition
// starts a fresh monitor and runs 101 polls, 250 ms apart:
//   - poll duration, from the monitor's own hourglass_lagmon_poll_seconds
//     (read after every poll): the first poll (cold: every timestamp is
//     fetched, __consumer_offsets is read from its log start) separately,
//     then p50 and p95 (nearest rank) of the next 100, reported as 60 s /
//     duration beside the 2 s budget (30 polls/min), so the ratio is budget /
//     measured and ≥ 1 meets the goal;
//   - the live heap (HeapAlloc) after a forced GC, after poll 10 and poll
//     100 (and between, logged with HeapInuse), reported as heap@10 /
//     heap@100: 1.0 is flat, the goal 0.9 allows 10 % growth. The live heap,
//     not HeapInuse: what the monitor keeps, not how the allocator's spans
//     happen to be filled.
//
// Absolute numbers on a shared machine: the load average is logged and in
// the notes.
func TestBenchLagmonPoll(t *testing.T) {
	brokers := stacktest.Brokers(t)
	prefix := stacktest.UniqueName("lagbench")
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 30 * time.Second}
	setup := time.Now()

	topics := make([]string, benchTopics)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s.t%d", prefix, i)
	}
	createBenchTopics(t, client, brokers, topics)
	produceBenchRecords(t, brokers, topics)
	groups := make([]string, benchGroups)
	for g := range groups {
		groups[g] = fmt.Sprintf("%s-g%d", prefix, g)
	}
	commitBenchGroups(t, client, brokers, groups, topics)
	t.Logf("setup: %d topics × %d partitions, %d records each, %d groups committed on every partition, in %.1f s",
		benchTopics, benchPartitions, benchRecords, benchGroups, time.Since(setup).Seconds())

	cfgPath := filepath.Join(t.TempDir(), "lagmon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(
		"brokers: [%s]\ncatalog: \"\"\nallow: [\"^%s-g\"]\npoll_interval: %s\nwindow: %s\nes_urls: []\nalertmanager_urls: []\nwebhook_urls: []\n",
		brokers, prefix, benchInterval, benchWindow)), 0o644))

	load := loadAvg()
	p50 := benchreport.Result{Goal: 1.0, Name: "lag monitor poll, p50 (1 000 partitions × 10 groups)", Unit: "polls/min (60 s / poll duration)",
		Subject: "one poll (warm), p50 of 100", Baseline: "issue 16 budget: 2 s per poll"}
	p95 := p50
	p95.Name, p95.Subject = "lag monitor poll, p95 (1 000 partitions × 10 groups)", "one poll (warm), p95 of 100"
	first := p50
	first.Name, first.Subject = "lag monitor first poll (1 000 partitions × 10 groups)", "first poll of a fresh monitor (every timestamp fetched)"
	heap := benchreport.Result{Goal: 1 - heapSlackRatio, Name: "lag monitor heap over 100 polls (1 000 partitions × 10 groups)", Unit: "MiB live heap after GC",
		Subject: "after poll 10", Baseline: "after poll 100"}
	for rep := range benchreport.Reps() {
		r := runBenchMonitor(t, cfgPath, groups)
		p50.Subj, p50.Base = append(p50.Subj, 60/r.p50.Seconds()), append(p50.Base, 60/pollBudget.Seconds())
		p95.Subj, p95.Base = append(p95.Subj, 60/r.p95.Seconds()), append(p95.Base, 60/pollBudget.Seconds())
		first.Subj, first.Base = append(first.Subj, 60/r.first.Seconds()), append(first.Base, 60/pollBudget.Seconds())
		heap.Subj, heap.Base = append(heap.Subj, mib(r.heap[10])), append(heap.Base, mib(r.heap[benchPolls]))
		var trend []string
		for _, n := range heapAt {
			trend = append(trend, fmt.Sprintf("@%d %.1f (in use %.1f)", n, mib(r.heap[n]), mib(r.inuse[n])))
		}
		growth := int64(r.heap[benchPolls]) - int64(r.heap[10])
		t.Logf("rep %d: first poll %.3f s; polls 2–%d: p50 %.3f s, p95 %.3f s, max %.3f s (budget %s); live heap MiB %s: growth %+.1f MiB (%+.1f %%, bound max(%.0f %%, %d MiB)); one /metrics gather %.3f s (%d series)",
			rep, r.first.Seconds(), benchPolls+1, r.p50.Seconds(), r.p95.Seconds(), r.max.Seconds(), pollBudget,
			strings.Join(trend, ", "), float64(growth)/(1<<20), 100*float64(growth)/float64(r.heap[10]), 100*heapSlackRatio, heapSlackBytes>>20,
			r.gather.Seconds(), r.series)
		if bound := max(int64(heapSlackRatio*float64(r.heap[10])), heapSlackBytes); growth > bound {
			t.Errorf("rep %d: heap grew %d bytes from poll 10 to poll %d (bound %d): not flat", rep, growth, benchPolls, bound)
		}
	}
	notes := fmt.Sprintf("absolute, no peer: %d topics × %d partitions (%d records each), %d groups committed on all (offsets 0–%d), "+
		"freshness and alerts off; fresh monitor per repetition, %s poll interval, %s window; duration from hourglass_lagmon_poll_seconds; "+
		"heap = runtime HeapAlloc (live bytes) after runtime.GC; load average %s at start", benchTopics, benchPartitions, benchRecords, benchGroups, benchRecords,
		benchInterval, benchWindow, load)
	p50.Notes, p95.Notes = "ratio = 2 s / p50 (≥ 1 meets issue 16). "+notes, "ratio = 2 s / p95 (≥ 1 meets issue 16). "+notes
	first.Notes = "ratio = 2 s / first poll; cold: one Fetch per distinct committed position for its timestamp, __consumer_offsets read from its log start. " + notes
	heap.Notes = fmt.Sprintf("ratio = heap after poll 10 / heap after poll %d: 1.0 is flat, goal %.1f (≤ 10 %% growth). ", benchPolls, 1-heapSlackRatio) + notes
	benchreport.Write(t, p50)
	benchreport.Write(t, p95)
	benchreport.Write(t, first)
	benchreport.Write(t, heap)
}

// heapAt: after which polls the heap is read (10 and benchPolls are reported).
var heapAt = []uint64{10, 25, 50, 75, benchPolls}

// benchRun is one repetition's measurements.
type benchRun struct {
	first, p50, p95, max time.Duration
	heap                 map[uint64]uint64 // after poll n: live heap (HeapAlloc) after GC
	inuse                map[uint64]uint64 // after poll n: HeapInuse after GC (spans, with their free slots)
	gather               time.Duration     // one Gather of the registry (a /metrics scrape's work)
	series               int
}

// runBenchMonitor starts a monitor, times benchPolls+1 polls and reads the
// heap between them, checks the last snapshot saw every partition of every
// group with a known lag, and stops the monitor.
func runBenchMonitor(t *testing.T, cfgPath string, groups []string) benchRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	pr := &pollRecorder{Registerer: reg, own: prometheus.NewRegistry()}
	m, err := lagmon.New(func() (lagmon.Config, error) { return lagmon.LoadFile(cfgPath, lagmon.DefaultConfig()) },
		slog.New(slog.NewTextHandler(io.Discard, nil)), pr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	r := benchRun{heap: map[uint64]uint64{}, inuse: map[uint64]uint64{}}
	var durs []time.Duration
	var seen uint64
	var sum float64
	deadline := time.Now().Add(5 * time.Minute)
	for seen < benchPolls+1 {
		require.True(t, time.Now().Before(deadline), "%d polls in 5 minutes", seen)
		time.Sleep(2 * time.Millisecond)
		n, s := pr.read(t)
		if n == seen {
			continue
		}
		// Normally one poll since the last look; if more, each gets the mean.
		for i := seen; i < n; i++ {
			d := time.Duration((s - sum) / float64(n-seen) * float64(time.Second))
			if i == 0 {
				r.first = d
			} else {
				durs = append(durs, d)
			}
		}
		prev := seen
		seen, sum = n, s
		for _, at := range heapAt {
			if prev < at && at <= seen {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				r.heap[at], r.inuse[at] = ms.HeapAlloc, ms.HeapInuse
			}
		}
	}
	durs = durs[:benchPolls]
	slices.Sort(durs)
	r.p50, r.p95, r.max = nearest(durs, 50), nearest(durs, 95), durs[len(durs)-1]

	snap := m.Snapshot()
	require.Empty(t, snap.Errors, "poll %d", snap.Poll)
	require.Len(t, snap.Groups, len(groups))
	for g, gs := range snap.Groups {
		require.Equal(t, groups[g], gs.Group)
		require.Len(t, gs.Partitions, benchTopics*benchPartitions, gs.Group)
		off := int64(g % (benchRecords + 1))
		require.Equal(t, lagmon.Known(int64(benchTopics*benchPartitions)*(benchRecords-off)), gs.Lag, "lag of %s", gs.Group)
		require.True(t, gs.TimeLag.Known, "time lag of %s", gs.Group)
	}
	began := time.Now()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	r.gather = time.Since(began)
	for _, mf := range mfs {
		r.series += len(mf.GetMetric())
	}
	return r
}

// pollRecorder registers the monitor's collectors and keeps its poll
// histogram apart, so it can be read after every poll without gathering
// the 70 000 lag and status series.
type pollRecorder struct {
	prometheus.Registerer
	own *prometheus.Registry
}

func (p *pollRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if h, ok := c.(prometheus.Histogram); ok && strings.Contains(h.Desc().String(), `"hourglass_lagmon_poll_seconds"`) {
			p.own.MustRegister(c)
		}
		p.Registerer.MustRegister(c)
	}
}

// read returns the number of polls observed and the sum of their durations.
func (p *pollRecorder) read(t *testing.T) (uint64, float64) {
	mfs, err := p.own.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1, "hourglass_lagmon_poll_seconds registered")
	h := mfs[0].GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func createBenchTopics(t *testing.T, client *kafka.Client, brokers string, topics []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := &kafka.CreateTopicsRequest{}
	for _, tp := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: tp, NumPartitions: benchPartitions, ReplicationFactor: 1})
	}
	stacktest.DeleteTopicsOnCleanup(t, brokers, topics...)
	res, err := client.CreateTopics(ctx, req)
	require.NoError(t, err)
	for _, tp := range topics {
		require.NoError(t, res.Errors[tp], "create %s", tp)
	}
	// Every partition has a leader before anything is produced.
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		ready := err == nil && len(meta.Topics) == len(topics)
		for _, tp := range meta.Topics {
			ready = ready && tp.Error == nil && len(tp.Partitions) == benchPartitions
			for _, p := range tp.Partitions {
				ready = ready && p.Leader.Host != ""
			}
		}
		if ready {
			return
		}
		require.NoError(t, ctx.Err(), "leaders of %v (last: %v)", topics, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// produceBenchRecords writes benchRecords to every partition, one batch per
// partition (the key names the partition).
func produceBenchRecords(t *testing.T, brokers string, topics []string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers), RequiredAcks: kafka.RequireOne, BatchSize: benchRecords, BatchTimeout: 10 * time.Millisecond,
		Balancer: kafka.BalancerFunc(func(msg kafka.Message, _ ...int) int { p, _ := strconv.Atoi(string(msg.Key)); return p })}
	defer w.Close()
	var msgs []kafka.Message
	for _, tp := range topics {
		for p := range benchPartitions {
			for i := range benchRecords {
				msgs = append(msgs, kafka.Message{Topic: tp, Key: []byte(strconv.Itoa(p)), Value: []byte(`{"i":` + strconv.Itoa(i) + `}`)})
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Right after creation a partition's leader may not accept writes yet
	// (Not Leader For Partition): write the failed records again.
	for attempt := 0; len(msgs) > 0; attempt++ {
		err := w.WriteMessages(ctx, msgs...)
		var werrs kafka.WriteErrors
		if err == nil || !errors.As(err, &werrs) || attempt == 20 {
			require.NoError(t, err, "produce (attempt %d)", attempt)
			return
		}
		var again []kafka.Message
		for i, e := range werrs {
			if e != nil {
				again = append(again, msgs[i])
			}
		}
		msgs = again
		time.Sleep(250 * time.Millisecond)
	}
}

// commitBenchGroups commits, for group g, offset g mod (benchRecords+1) on
// every partition (0 … benchRecords: from all records behind to caught up),
// and deletes the groups at the end.
func commitBenchGroups(t *testing.T, client *kafka.Client, brokers string, groups, topics []string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: groups})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for g, group := range groups {
		offsets := map[int]int64{}
		for p := range benchPartitions {
			offsets[p] = int64(g % (benchRecords + 1))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tp := range topics {
				if err := stacktest.CommitOffsets(ctx, brokers, group, tp, offsets); err != nil {
					errs[g] = fmt.Errorf("commit %s on %s: %w", group, tp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func nearest(sorted []time.Duration, pct int) time.Duration {
	i := (pct*len(sorted)+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// loadAvg is /proc/loadavg's first three fields ("?" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
