//go:build integration

package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/jobs"
	"github.com/hourglass-io/hourglass/internal/jobs/jobstest"
	"github.com/hourglass-io/hourglass/internal/metriceval"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

var t0 = time.Date(2026, 1, 1, 0, 50, 0, 0, time.UTC)

// TestStreamingAgainstGroundTruth runs the whole path — generator → raw topic →
// router → metric topics → the Spark job (every metric of the catalog, one
// driver, checkpoints on HDFS) → OpenSearch — and checks every document against
// the exact values computed in Go. On the way it SIGKILLs the Spark driver
// mid-stream (the supervisor restarts it), sends late records inside and
// beyond the watermark, checks the late-record counts, the consumer groups'
// lag with Kafka's own tool, and batch mode for a closed hour.
func TestStreamingAgainstGroundTruth(t *testing.T) {
	e := newStackEnv(t)
	rep := e.setupES(t)
	t.Logf("es setup: %d templates, retention: %s", len(rep.Templates), rep.Retention)
	e.startRouter(t, e.catalogPath)

	// Phase 1: 90 minutes of event time (00:50-02:20, crossing two hour
	// boundaries), 4 tenants, events up to 90 s out of order.
	g := gen.New(gen.Config{Seed: 5, Tenants: 4, Start: t0, Rate: 3, Disorder: 90 * time.Second})
	phase1 := make([]record.Record, 90*60*3)
	for i := range phase1 {
		phase1[i] = g.Next()
	}
	e.produce(t, phase1)
	stacktest.WaitCaughtUp(t, e.brokers, e.routerGroup, e.raw, 3*time.Minute)

	// A bad row that got past ingress and the router: one far-future record of
	// another tenant, straight into a metric topic (issue 12, finding 4). The
	// job drops it before the watermark and counts it as out_of_range; if it
	// reached the watermark, every window below would be missing or late.
	poisoned := e.catalog.Metrics[0]
	for _, m := range e.catalog.Metrics {
		if m.Name == "request_rate_"+e.suffix {
			poisoned = m
		}
	}
	stacktest.Produce(t, e.brokers, catalog.SparkSpec(poisoned).Topic, kafka.Message{
		Key: []byte("poison"), Value: []byte(`{"timestamp":"2099-01-01T00:00:00Z","tenant":"poison"}`)})

	// The job works through the backlog in several micro-batches.
	cfg := e.jobsCfg
	cfg.MaxOffsetsPerTrigger = 4000
	var specs []catalog.JobSpec
	for _, m := range e.catalog.Metrics {
		specs = append(specs, catalog.SparkSpec(m))
	}
	driver := jobstest.Start(t, cfg, "all", specs, e.log)

	// Crash: SIGKILL the driver (spark-submit, JVM and Python) once it has
	// committed some progress but not all.
	var killedAt string
	require.Eventually(t, func() bool {
		done, total, part := e.committedSummary(t)
		if done == 0 {
			return false
		}
		killedAt = fmt.Sprintf("%d of %d metric records committed (%s)", done, total, part)
		return true
	}, 5*time.Minute, 200*time.Millisecond)
	st := driver.State()
	require.NoError(t, syscall.Kill(-st.DriverPID, syscall.SIGKILL))
	t.Logf("SIGKILLed the Spark driver (pid %d) mid-stream: %s", st.DriverPID, killedAt)
	require.Eventually(t, func() bool {
		s := driver.State()
		return s.Restarts >= 1 && s.State == jobs.StateRunning
	}, time.Minute, 100*time.Millisecond, "the supervisor restarts the driver")
	e.waitDrained(t, 10*time.Minute)

	// The watermark of each metric's aggregation query has reached max(event time) - lateness.
	wm := map[string]time.Time{}
	for _, m := range e.catalog.Metrics {
		recs := metriceval.Filter(m, phase1)
		var maxTS time.Time
		for _, r := range recs {
			if r.Timestamp.After(maxTS) {
				maxTS = r.Timestamp
			}
		}
		wm[m.Name] = time.UnixMilli(maxTS.UnixMilli()).Add(-m.AllowedLateness.Duration).UTC()
	}
	require.Eventually(t, func() bool {
		p, err := jobs.ReadProgress(cfg, "all")
		if err != nil {
			return false
		}
		for _, m := range e.catalog.Metrics {
			q := p.Queries["hourglass-"+m.Name+"-windows"] // one aggregation for every window size
			got, err := time.Parse(time.RFC3339Nano, q.Watermark)
			if err != nil || !got.Equal(wm[m.Name]) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 200*time.Millisecond, "watermarks reach max event time - lateness")

	// Phase 2: late records, produced after phase 1 is processed. The watermark
	// is about 02:10: hour 00 and 01 records are beyond it for both window
	// sizes, 02:00-02:08 ones for 1m windows only, 02:11-02:19 ones inside.
	cut := time.Now()
	lg := gen.New(gen.Config{Seed: 6, Tenants: 4, Start: t0, Rate: 1})
	var late []record.Record
	for i := range 240 {
		r := lg.Next()
		var at time.Time
		switch i % 4 {
		case 0:
			at = t0.Add(time.Duration(i) * 2 * time.Second) // 00:50-00:58
		case 1:
			at = t0.Add(40*time.Minute + time.Duration(i)*7*time.Second) // 01:30-01:58
		case 2:
			at = t0.Add(70*time.Minute + time.Duration(i)*2*time.Second) // 02:00-02:08
		default:
			at = t0.Add(81*time.Minute + time.Duration(i)*2*time.Second) // 02:11-02:19
		}
		r.Timestamp = at.Add(time.Duration(i) * time.Millisecond)
		late = append(late, r)
	}
	e.produce(t, late)
	e.waitDrained(t, 5*time.Minute)

	// Ground truth: phase 1 all counted; a late record counts in a window
	// unless the window ended at or before the watermark.
	truth := map[string]*metriceval.Result{}
	for _, m := range e.catalog.Metrics {
		p1, p2 := metriceval.Filter(m, phase1), metriceval.Filter(m, late)
		recs := append(slices.Clone(p1), p2...)
		w := wm[m.Name]
		truth[m.Name] = metriceval.Evaluate(m, recs, func(i int, d time.Duration) bool {
			return i < len(p1) || metriceval.WindowEnd(recs[i].Timestamp, d).After(w)
		})
	}

	var problems []string
	ok := assertEventually(3*time.Minute, func() bool {
		problems = nil
		for _, m := range e.catalog.Metrics {
			problems = append(problems, e.compareMetric(t, truth[m.Name])...)
		}
		return len(problems) == 0
	})
	require.True(t, ok, "documents differ from the ground truth:\n%s", strings.Join(first(problems, 30), "\n"))
	var nDocs, nLate int
	for _, m := range e.catalog.Metrics {
		nDocs += len(truth[m.Name].Windows)
		for _, n := range truth[m.Name].Late {
			nLate += int(n)
		}
	}
	t.Logf("%d metric documents equal the ground truth (6 metrics, %d phase-1 records, %d late records)", nDocs, len(phase1), len(late))

	// Late records beyond the watermark are counted per window in hourglass-late-<metric>.
	ok = assertEventually(2*time.Minute, func() bool {
		problems = nil
		for _, m := range e.catalog.Metrics {
			problems = append(problems, e.compareLate(t, truth[m.Name])...)
		}
		return len(problems) == 0
	})
	require.True(t, ok, "late counts differ:\n%s", strings.Join(first(problems, 30), "\n"))
	t.Logf("late records beyond the watermark: %d (metric × window size) counted exactly in hourglass-late-<metric>", nLate)

	// The far-future record is counted once, as out_of_range, for its tenant only.
	out := e.outOfRange(t, poisoned.Name)
	require.Equal(t, map[string]int64{"poison": 1}, out, "out_of_range counts of %s", poisoned.Name)
	t.Logf("far-future record of tenant poison in %s: dropped before the watermark, counted as out_of_range; every other tenant's documents exact", poisoned.Name)

	// Kafka's own consumer-groups tool reports lag 0 for every metric job.
	for _, tp := range e.catalog.Topics() {
		out, lags := consumerGroupLag(t, e.brokers, tp.ConsumerGroup)
		require.Len(t, lags, tp.Partitions, out)
		for p, lag := range lags {
			require.Zero(t, lag, "lag of %s %s\n%s", tp.ConsumerGroup, p, out)
		}
		if tp.Metric == e.catalog.Metrics[0].Name {
			t.Logf("kafka-consumer-groups --describe --group %s:\n%s", tp.ConsumerGroup, out)
		}
	}

	// Batch mode for the closed hour 01:00 (Kafka records up to the cut, when
	// the late records were not sent yet) writes the same documents.
	hour := t0.Add(10 * time.Minute)
	driver.Stop() // the streaming job first: batch documents must not be overwritten by it
	for _, m := range e.catalog.Metrics {
		res := truth[m.Name]
		before := e.hourDocs(t, m, hour)
		require.Len(t, before, 60*4+4, "streaming documents of hour 01 of %s", m.Name)
		e.runBatch(t, m, hour, "--kafka-to", cut.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		after := e.hourDocs(t, m, hour)
		require.Equal(t, keys(before), keys(after), "batch writes the same _ids as streaming (%s)", m.Name)
		for id, doc := range after {
			require.Empty(t, sameDoc(m, before[id], doc), "batch vs streaming, %s %s", m.Name, id)
		}
		for _, w := range res.Windows {
			if w.Start.Before(hour) || !w.Start.Before(hour.Add(time.Hour)) {
				continue
			}
			doc := after[res.DocID(w)]
			require.NotNil(t, doc)
			require.Empty(t, res.Compare(w, doc), "batch document vs ground truth (%s)", m.Name)
		}
		run := e.lastRun(t, m.Name)
		require.Equal(t, catalog.RunOK, run[catalog.RunOutcome], jsonString(run))
		require.Equal(t, hour.Format(time.RFC3339), run[catalog.RunHour])
		require.Equal(t, float64(countIn(metriceval.Filter(m, phase1), hour)), run[catalog.RunRecords], jsonString(run))
		require.IsType(t, 0.0, run[catalog.RunDurationSeconds], "the lag monitor reads the duration as a number of seconds")
	}
	t.Logf("batch mode for hour %s: documents equal the streaming ones for all %d metrics; runs recorded in hourglass-jobruns", hour.Format(time.RFC3339), len(e.catalog.Metrics))
}

func assertEventually(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Second)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

// committedSummary sums, over the metric topics, the job groups' committed offsets and the end offsets.
func (e *stackEnv) committedSummary(t *testing.T) (done, total int64, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var parts []string
	for _, tp := range e.catalog.Topics() {
		end, err := stacktest.EndOffsets(ctx, e.brokers, tp.Topic)
		if err != nil {
			return 0, 0, ""
		}
		c, err := stacktest.Committed(ctx, e.brokers, tp.ConsumerGroup, tp.Topic, len(end))
		if err != nil {
			return 0, 0, ""
		}
		var d, n int64
		for p, o := range end {
			n += o
			if c[p] > 0 {
				d += c[p]
			}
		}
		done, total = done+d, total+n
		parts = append(parts, fmt.Sprintf("%s %d/%d", tp.Metric, d, n))
	}
	return done, total, strings.Join(parts, ", ")
}

// compareMetric checks every document of a metric against the ground truth,
// and that there is no other document.
func (e *stackEnv) compareMetric(t *testing.T, res *metriceval.Result) []string {
	docs := e.searchAll(t, catalog.Alias(res.Metric.Name))
	var bad []string
	for _, w := range res.Windows {
		id := res.DocID(w)
		doc, ok := docs[id]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s %s %s %s: missing", res.Metric.Name, w.Size, w.Start.Format(time.RFC3339), w.Group))
			continue
		}
		if doc["_index"] != res.Index(w) {
			bad = append(bad, fmt.Sprintf("%s: index %v, want %s", id, doc["_index"], res.Index(w)))
		}
		delete(doc, "_index")
		for _, p := range res.Compare(w, doc) {
			bad = append(bad, fmt.Sprintf("%s %s %s %s: %s", res.Metric.Name, w.Size, w.Start.Format(time.RFC3339), w.Group, p))
		}
		delete(docs, id)
	}
	for id, doc := range docs {
		bad = append(bad, fmt.Sprintf("%s: unexpected document %s %s", res.Metric.Name, id, jsonString(doc)))
	}
	return bad
}

// compareLate checks the late counts in hourglass-late-<metric> against Result.Late.
func (e *stackEnv) compareLate(t *testing.T, res *metriceval.Result) []string {
	index := "hourglass-late-" + res.Metric.Name
	got := map[metriceval.Key]int64{}
	if len(res.Late) > 0 {
		for _, doc := range e.searchAll(t, index) {
			if doc["reason"] != "late" {
				continue // out_of_range counts: see outOfRange
			}
			win := doc["window"].(map[string]any)
			start, _ := time.Parse(time.RFC3339, win["start"].(string))
			got[metriceval.Key{Size: win["size"].(string), Start: start, Group: doc["tenant"].(string)}] += int64(doc["late_records"].(float64))
		}
	}
	var bad []string
	for k, n := range res.Late {
		if got[k] != n {
			bad = append(bad, fmt.Sprintf("%s late %v: got %d, want %d", res.Metric.Name, k, got[k], n))
		}
		delete(got, k)
	}
	for k, n := range got {
		bad = append(bad, fmt.Sprintf("%s late %v: got %d, want none", res.Metric.Name, k, n))
	}
	return bad
}

// outOfRange sums the out_of_range counts of hourglass-late-<metric> by tenant.
func (e *stackEnv) outOfRange(t *testing.T, metric string) map[string]int64 {
	got := map[string]int64{}
	for _, doc := range e.searchAll(t, "hourglass-late-"+metric) {
		if doc["reason"] == "out_of_range" {
			n, _ := doc["rejected_records"].(float64)
			got[fmt.Sprint(doc["tenant"])] += int64(n)
		}
	}
	return got
}

// hourDocs returns a metric's documents whose window starts in the hour.
func (e *stackEnv) hourDocs(t *testing.T, m catalog.Metric, hour time.Time) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, doc := range e.searchAll(t, catalog.Alias(m.Name)) {
		start, _ := time.Parse(time.RFC3339, doc["window"].(map[string]any)["start"].(string))
		if !start.Before(hour) && start.Before(hour.Add(time.Hour)) {
			delete(doc, "computed_at")
			out[id] = doc
		}
	}
	return out
}

// sameDoc compares a batch document with the streaming one: exact except
// averages (1e-9 relative) and percentiles (both checked against the truth).
func sameDoc(m catalog.Metric, a, b map[string]any) []string {
	var bad []string
	inexact := map[string]bool{}
	for _, ag := range m.Aggregations {
		if ag.Fn == catalog.FnAvg || ag.Fn == catalog.FnRatio || ag.Fn == catalog.FnPercentiles {
			for _, o := range ag.Outputs() {
				inexact[o] = ag.Fn != catalog.FnPercentiles
				if ag.Fn == catalog.FnPercentiles {
					delete(inexact, o)
					inexact["~"+o] = true
				}
			}
		}
	}
	for k, va := range a {
		vb := b[k]
		switch {
		case inexact["~"+k]:
		case inexact[k]:
			fa, _ := va.(float64)
			fb, _ := vb.(float64)
			if !metriceval.Close(fa, fb, metriceval.RelTol) {
				bad = append(bad, fmt.Sprintf("%s: %v vs %v", k, va, vb))
			}
		default:
			if jsonString(va) != jsonString(vb) {
				bad = append(bad, fmt.Sprintf("%s: %v vs %v", k, jsonString(va), jsonString(vb)))
			}
		}
	}
	return bad
}

func keys(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func countIn(recs []record.Record, hour time.Time) int {
	n := 0
	for _, r := range recs {
		if !r.Timestamp.Before(hour) && r.Timestamp.Before(hour.Add(time.Hour)) {
			n++
		}
	}
	return n
}

// lastRun returns the latest run document of metric in catalog.JobRunsIndex.
func (e *stackEnv) lastRun(t *testing.T, metric string) map[string]any {
	var last map[string]any
	for _, doc := range e.searchAll(t, catalog.JobRunsIndex) {
		if doc[catalog.RunMetric] == metric && (last == nil || doc[catalog.RunStart].(string) > last[catalog.RunStart].(string)) {
			last = doc
		}
	}
	require.NotNil(t, last, "no run of %s in %s", metric, catalog.JobRunsIndex)
	return last
}
