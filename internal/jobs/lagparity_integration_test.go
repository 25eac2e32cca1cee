//go:build integration

package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/jobs/jobstest"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
)

// TestSparkJobLagParity is issue 7's last acceptance point: a real Spark
// metric job (request_rate, one driver) consumes its topic while records
// arrive in bursts; the lag monitor's offset lag for the job's group
// hourglass-metrics-<metric> matches Spark's own offsetsBehindLatest within
// one micro-batch, and both reach 0 when the stream is drained.
//
// "Matches within one micro-batch", precisely. Spark reports, per query and
// micro-batch, offsetsBehindLatest X = Σp (L_p − end_p): L the latest offsets
// it saw when it planned the batch, end the offsets the batch read up to. The
// lag monitor reports lag = Σp (E_p − C_p): E the end offsets at its poll, C
// the group's committed offsets (the job commits, per partition, the smallest
// end offset of its two queries after each progress). So
//
//	lag − X − Σp (E_p − L_p) = Σp (end_p − C_p)
//
// where Σ(E − L) is exactly the records that reached the topic after Spark
// looked (computed from the two programs' own numbers), and the right side is
// how far the query's position is from the group's commit. The test asserts,
// at every poll of the monitor, |lag − X − Σ(E − L)| ≤ one micro-batch
// (maxOffsetsPerTrigger records) for the query the commit follows (the one
// with the smallest end offsets); that mid-stream, with Spark behind by
// X > 0 and nothing produced since, the two figures are equal; and that both
// are 0 (and Kafka's own tool says lag 0) once drained.
func TestSparkJobLagParity(t *testing.T) {
	const (
		batch  = 200  // maxOffsetsPerTrigger: one micro-batch
		burst  = 1500 // records per burst
		bursts = 3
	)
	e := newStackEnv(t)
	e.setupES(t)
	e.startRouter(t, e.catalogPath)
	var tp catalog.TopicSpec
	var metric catalog.Metric
	for i, x := range e.catalog.Topics() {
		if x.Metric == "request_rate_"+e.suffix {
			tp, metric = x, e.catalog.Metrics[i]
		}
	}
	require.Equal(t, tp.Metric, metric.Name, "request_rate in the test catalog")
	require.Eventually(t, func() bool { // the router creates the metric topics at start
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		end, err := stacktest.EndOffsets(ctx, e.brokers, tp.Topic)
		return err == nil && len(end) == tp.Partitions
	}, time.Minute, 100*time.Millisecond, "topic %s created by the router", tp.Topic)
	deleteGroupOnCleanup(t, e.brokers, tp.ConsumerGroup)

	mon := startLagmon(t, e.brokers, tp.ConsumerGroup)

	cfg := e.jobsCfg
	cfg.MaxOffsetsPerTrigger = batch
	const job = "parity"
	jobstest.Start(t, cfg, job, []catalog.JobSpec{catalog.SparkSpec(metric)}, e.log)
	queries := []string{"hourglass-" + metric.Name + "-windows", "hourglass-" + metric.Name + "-late"}
	progressPath := filepath.Join(cfg.StateDir, job, "progress.json")
	require.Eventually(t, func() bool {
		p, err := readJobProgress(progressPath)
		return err == nil && len(p.Started) == len(queries)
	}, 3*time.Minute, 100*time.Millisecond, "the Spark job starts its %d queries", len(queries))

	s := &paritySampler{t: t, mon: mon, group: tp.ConsumerGroup, topic: tp.Topic, partitions: tp.Partitions,
		progressPath: progressPath, queries: queries, batch: batch}
	g := gen.New(gen.Config{Seed: 7, Tenants: 3, Start: time.Now().UTC().Truncate(time.Minute), Rate: 100})
	for b := range bursts {
		recs := make([]record.Record, burst)
		for i := range recs {
			recs[i] = g.Next()
		}
		e.produce(t, recs)
		want := int64((b + 1) * burst)
		// Next burst once the router has routed this one and the job has
		// worked through half of it (the last: once drained).
		s.waitFor(3*time.Minute, fmt.Sprintf("burst %d routed and half processed", b+1), func(ps paritySample) bool {
			return ps.end == want && ps.lag <= int64(burst/2)
		})
	}
	final := s.waitFor(3*time.Minute, "the lag monitor and Spark both report 0 behind", func(ps paritySample) bool {
		return ps.end == int64(bursts*burst) && ps.lag == 0 && ps.timeLagZero && ps.allBehindZero
	})

	// Every poll: within one micro-batch.
	var midStream, exact int
	var worst paritySample
	for _, ps := range s.samples {
		d := ps.lag - ps.behind - ps.arrived
		require.LessOrEqual(t, abs64(d), int64(batch), "poll %d: lagmon lag %d, Spark offsetsBehindLatest %d (%s batch %d), arrived since %d: off by %d records, more than one micro-batch (%d)",
			ps.poll, ps.lag, ps.behind, ps.query, ps.batchID, ps.arrived, d, batch)
		if abs64(d) > abs64(worst.lag-worst.behind-worst.arrived) {
			worst = ps
		}
		if ps.behind > 0 {
			midStream++
			if ps.arrived == 0 && ps.lag == ps.behind {
				exact++
			}
		}
	}
	require.GreaterOrEqual(t, midStream, 5, "polls while Spark was behind")
	require.Positive(t, exact, "a poll where nothing arrived since Spark's batch and the lag equals offsetsBehindLatest")
	t.Logf("%d polls compared: %d while Spark was behind (X > 0), %d of them with lagmon lag == offsetsBehindLatest exactly; largest |lag − X − arrived| = %d records (poll %d: lag %d, X %d, arrived %d; one micro-batch = %d)",
		len(s.samples), midStream, exact, abs64(worst.lag-worst.behind-worst.arrived), worst.poll, worst.lag, worst.behind, worst.arrived, batch)
	for _, ps := range s.samples {
		if ps.behind > 0 && ps.arrived == 0 {
			t.Logf("  e.g. poll %d: lagmon lag %d (end %d, committed %d), Spark %s batch %d offsetsBehindLatest %d", ps.poll, ps.lag, ps.end, ps.end-ps.lag, ps.query, ps.batchID, ps.behind)
			break
		}
	}
	t.Logf("drained: lagmon lag %d, time lag 0, every query's offsetsBehindLatest 0, end %d (poll %d)", final.lag, final.end, final.poll)

	out, lags := consumerGroupLag(t, e.brokers, tp.ConsumerGroup)
	require.Len(t, lags, tp.Partitions, out)
	for p, lag := range lags {
		require.Zero(t, lag, "kafka-consumer-groups lag of %s\n%s", p, out)
	}
}

// jobProgress is the part of the driver's progress.json this test reads.
type jobProgress struct {
	Started map[string]string `json:"started"`
	Queries map[string]struct {
		BatchID             int64            `json:"batch_id"`
		EndOffsets          map[string]int64 `json:"end_offsets"`
		LatestOffsets       map[string]int64 `json:"latest_offsets"`
		OffsetsBehindLatest *int64           `json:"offsets_behind_latest"`
	} `json:"queries"`
}

func readJobProgress(path string) (jobProgress, error) {
	var p jobProgress
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("read progress: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode progress %s: %w", path, err)
	}
	return p, nil
}

// paritySample is one poll of the lag monitor beside the job's progress read
// right after it.
type paritySample struct {
	poll          uint64
	end, lag      int64 // lagmon: Σ end offsets, Σ (end − committed)
	timeLagZero   bool
	query         string // the query the commit follows (smallest end offsets)
	batchID       int64
	behind        int64 // its offsetsBehindLatest
	arrived       int64 // Σ (E − L): records that reached the topic after Spark planned the batch
	allBehindZero bool  // every query reports offsetsBehindLatest 0 and read up to E
}

type paritySampler struct {
	t            *testing.T
	mon          *lagmon.Monitor
	group, topic string
	partitions   int
	progressPath string
	queries      []string
	batch        int
	lastPoll     uint64
	samples      []paritySample
}

// sample records the latest poll if it is new and complete (every partition
// committed, every query has reported a progress with its source metrics).
func (s *paritySampler) sample() (paritySample, bool) {
	snap := s.mon.Snapshot()
	if snap == nil || snap.Poll == s.lastPoll {
		return paritySample{}, false
	}
	s.lastPoll = snap.Poll
	var gs *lagmon.GroupStatus
	for i := range snap.Groups {
		if snap.Groups[i].Group == s.group {
			gs = &snap.Groups[i]
		}
	}
	if gs == nil {
		return paritySample{}, false
	}
	ps := paritySample{poll: snap.Poll, timeLagZero: true}
	ends := map[string]int64{}
	n := 0
	for _, p := range gs.Partitions {
		if p.Topic != s.topic || p.Error != "" || !p.Committed.Known || !p.Lag.Known || !p.End.Known {
			continue
		}
		n++
		ends[strconv.Itoa(p.Partition)] = p.End.N
		ps.end += p.End.N
		ps.lag += p.Lag.N
		ps.timeLagZero = ps.timeLagZero && p.TimeLag.Known && p.TimeLag.D == 0
	}
	if n != s.partitions {
		return paritySample{}, false
	}
	prog, err := readJobProgress(s.progressPath)
	if err != nil {
		return paritySample{}, false
	}
	slowest := int64(-1)
	ps.allBehindZero = true
	for _, name := range s.queries {
		q, ok := prog.Queries[name]
		if !ok || q.OffsetsBehindLatest == nil || len(q.LatestOffsets) != s.partitions {
			return paritySample{}, false
		}
		var sumEnd, arrived int64
		for p, e := range ends {
			sumEnd += q.EndOffsets[p]
			arrived += e - q.LatestOffsets[p]
			ps.allBehindZero = ps.allBehindZero && q.EndOffsets[p] == e
		}
		ps.allBehindZero = ps.allBehindZero && *q.OffsetsBehindLatest == 0
		if slowest < 0 || sumEnd < slowest {
			slowest = sumEnd
			ps.query, ps.batchID, ps.behind, ps.arrived = name, q.BatchID, *q.OffsetsBehindLatest, arrived
		}
	}
	s.samples = append(s.samples, ps)
	return ps, true
}

// waitFor samples every poll until cond holds for one.
func (s *paritySampler) waitFor(timeout time.Duration, what string, cond func(paritySample) bool) paritySample {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last paritySample
	for time.Now().Before(deadline) {
		if ps, ok := s.sample(); ok {
			last = ps
			if cond(ps) {
				return ps
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("timed out after %s waiting for %s; last sample %+v", timeout, what, last)
	return last
}

// startLagmon runs a lag monitor watching only group, polling every 200 ms.
func startLagmon(t *testing.T, brokers, group string) *lagmon.Monitor {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lagmon.yaml")
	yaml := "brokers: [" + brokers + "]\ncatalog: \"\"\nallow: [\"^" + strings.ReplaceAll(group, ".", `\\.`) + "$\"]\n" +
		"poll_interval: 200ms\nwindow: 2s\nsla: 1h\nreload_interval: 1s\n"
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	load := func() (lagmon.Config, error) { return lagmon.LoadFile(path, lagmon.DefaultConfig()) }
	m, err := lagmon.New(load, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return m
}

// deleteGroupOnCleanup deletes a consumer group (without members: the Spark
// job commits without joining) when the test ends.
func deleteGroupOnCleanup(t *testing.T, brokers, group string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
		_, _ = c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
