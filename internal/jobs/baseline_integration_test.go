//go:build integration

package jobs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/jobs"
	"github.com/hourglass-io/hourglass/internal/jobs/jobstest"
	"github.com/hourglass-io/hourglass/internal/metriceval"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestBaselinesAgainstGroundTruth is issue 17's end-to-end proof, on the real
// stack: the example catalog's request_rate with its baseline (median/MAD of
// the same window of the last 7 days, z 3, at least 5 samples) moved to the
// 1-minute windows, so that one hour of event time makes 60 windows per
// tenant.
//
//   - History: 7 days of 1-minute (and 1-hour) documents written straight into
//     OpenSearch in the job's document format (catalog's index, _id and field
//     names), per tenant a different shape: steady, busy, flat (spread 0),
//     young (3 days: fewer than min_samples), gappy (a missing day; 2 days only
//     in the last 5 minutes), newcomer (none), surge.
//   - Live: an hour of traffic (00:00-01:00, 2026-01-01: the look-back crosses
//     into December) through the router and a real Spark driver, whose
//     OpenSearch is a counting reverse proxy; the surge tenant sends 10× its
//     usual rate for 3 minutes. The driver is SIGKILLed mid-stream and restarts
//     from its checkpoint.
//   - Every 1-minute document's baseline equals metriceval.EvaluateBaseline's
//     (numbers to 1e-9 of their magnitude, see metriceval.Baseline.Compare:
//     Python and Go compute the same float64 formula, median/MAD in the same
//     operations, so they agree to an ulp or two — a wrong rule is off by far
//     more); the surge tenant is anomalous in exactly its 3 surge windows, no
//     other document is; the newcomer has samples 0 and a null expected.
//   - The history reads stay within the documented bound: per driver lifetime,
//     at most one _msearch per micro-batch of the 1-minute query (more only
//     past max_searches_per_request), every search within max_docs_per_search
//     and naming no more documents than it may return, only 1-minute
//     documents, only look-back windows of the windows written, and no (tenant,
//     window) asked twice (the cache).
//   - Replay: batch mode for the hour rewrites every document of the hour with
//     the same _id and the same values (computed_at aside), from exactly one
//     _msearch.
func TestBaselinesAgainstGroundTruth(t *testing.T) {
	began := time.Now()
	e, m := newBaselineEnv(t)
	b := m.Baselines[0]
	e.setupES(t)
	proxy := newESProxy(t, e.esURL, m)

	hist := baselineHistory()
	e.writeHistory(t, m, &hist)
	live, recs := baselineTraffic()
	t.Logf("history: %d documents of 7 days; live: %d records, %d tenants, 60 minutes from %s", len(hist.docs), len(recs),
		len(blTenants), blT0.Format(time.RFC3339))

	e.startRouter(t, e.catalogPath)
	e.produce(t, recs)
	stacktest.WaitCaughtUp(t, e.brokers, e.routerGroup, e.raw, 3*time.Minute)
	produced := time.Now()

	// The job works through the hour in about ten micro-batches.
	cfg := e.jobsCfg
	cfg.ESURL = proxy.URL
	cfg.MaxOffsetsPerTrigger = 2500
	spec := catalog.SparkSpec(m)
	require.Len(t, spec.Baselines, 1)
	driver := jobstest.Start(t, cfg, "baseline", []catalog.JobSpec{spec}, e.log)

	// SIGKILL the driver once the 1-minute query has written two micro-batches.
	require.Eventually(t, func() bool { return proxy.batchesSince(time.Time{}) >= 2 }, 4*time.Minute, 100*time.Millisecond,
		"the 1m query writes two micro-batches")
	done, total, _ := e.committedSummary(t)
	require.Less(t, done, total, "the job is still working through the hour when it is killed")
	st := driver.State()
	killed := time.Now()
	require.NoError(t, syscall.Kill(-st.DriverPID, syscall.SIGKILL))
	t.Logf("SIGKILLed the driver (pid %d) after %d micro-batches of the 1m query, %d of %d records committed",
		st.DriverPID, proxy.batchesSince(time.Time{}), done, total)
	require.Eventually(t, func() bool {
		s := driver.State()
		return s.Restarts >= 1 && s.State == jobs.StateRunning
	}, time.Minute, 100*time.Millisecond, "the supervisor restarts the driver")
	e.waitDrained(t, 5*time.Minute)

	// Ground truth: counts from the records, baselines from the history.
	res := metriceval.Evaluate(m, metriceval.Filter(m, recs), nil)
	want := map[string]metriceval.Baseline{} // by _id, the 1m windows
	var anomalous []string
	for _, w := range res.Windows {
		if w.Size != b.Window.String() {
			continue
		}
		require.Equal(t, float64(live[blKey{w.Group, w.Start}]), windowValue(t, m, w, b.Output), "generated count %s %s", w.Group, w.Start)
		bl := metriceval.EvaluateBaseline(b, ptr(windowValue(t, m, w, b.Output)), hist.past(b, w.Group, w.Start))
		require.False(t, bl.NearThreshold(), "test data: |score| of %s %s is too close to z to tell", w.Group, w.Start)
		want[res.DocID(w)] = bl
		if bl.Anomaly {
			anomalous = append(anomalous, w.Group+" "+w.Start.Format("15:04"))
		}
	}
	require.Len(t, want, 60*len(blTenants))
	slices.Sort(anomalous)
	require.Equal(t, []string{"surge 00:30", "surge 00:31", "surge 00:32"}, anomalous, "test data: the Go computation flags the surge only")

	var problems []string
	ok := assertEventually(2*time.Minute, func() bool {
		problems = e.compareBaselineDocs(t, m, res, want)
		return len(problems) == 0
	})
	require.True(t, ok, "documents differ from the ground truth:\n%s", strings.Join(first(problems, 30), "\n"))
	docs := e.hourDocs(t, m, blT0)
	require.Len(t, docs, len(res.Windows))
	flags := map[string]int{}
	for id := range want {
		got := docs[id][catalog.BaselineField].(map[string]any)[b.Output].(map[string]any)
		tenant := docs[id][record.FieldTenant].(string)
		if got["anomaly"] == true {
			flags[tenant]++
		}
		if tenant == "newcomer" {
			require.Equal(t, 0.0, got["samples"], "no history: samples 0")
			require.Contains(t, got, "expected")
			require.Nil(t, got["expected"], "no history: expected null, never a zero")
		}
		if tenant == "flat" {
			require.Equal(t, 0.0, got["spread"])
			require.Equal(t, 0.0, got["score"])
		}
	}
	require.Equal(t, map[string]int{"surge": 3}, flags, "anomalous documents per tenant")
	t.Logf("%d documents equal the ground truth; %d 1m documents carry baselines equal to the Go computation; "+
		"anomalous: surge 00:30-00:32 only; newcomer samples 0, expected null; flat spread 0, score 0 (%.0f s since the records were produced)",
		len(res.Windows), len(want), time.Since(produced).Seconds())

	// Every write of a 1m document, the intermediate ones of windows still
	// filling included, carries the baseline of the value it writes. A window
	// written before all its records arrived is judged on that partial value:
	// such a verdict is provisional (the Kibana panel says so until the window
	// is settled); a complete window of a tenant without a surge is never
	// anomalous, at any time.
	streamed := proxy.writes(time.Time{}, time.Now())
	var provisional []string
	for _, src := range streamed {
		tenant := src[record.FieldTenant].(string)
		start, err := time.Parse(time.RFC3339, src[catalog.DocWindow].(map[string]any)["start"].(string))
		require.NoError(t, err)
		v := src[b.Output].(float64)
		obj, _ := src[catalog.BaselineField].(map[string]any)
		require.NotNil(t, obj, "write of %s %s without a baseline", tenant, start)
		bl := metriceval.EvaluateBaseline(b, &v, hist.past(b, tenant, start))
		require.Empty(t, bl.Compare(obj[b.Output]), "baseline written for %s %s with %s = %v", tenant, start, b.Output, v)
		final := float64(live[blKey{tenant, start}])
		require.LessOrEqual(t, v, final)
		if bl.Anomaly && v < final && !(tenant == "surge" && start.Minute() >= 30 && start.Minute() < 33) {
			provisional = append(provisional, fmt.Sprintf("%s %s (%v of %v)", tenant, start.Format("15:04"), v, final))
		}
		if v == final && tenant != "surge" {
			require.False(t, bl.Anomaly, "complete window %s %s", tenant, start)
		}
	}
	t.Logf("%d writes of 1m documents by the streaming job, each with the baseline of the value it wrote; "+
		"%d of them flagged a window still filling (provisional), e.g. %v", len(streamed), len(provisional), first(provisional, 3))

	// The history reads, per driver lifetime.
	liveStarts := map[blKey]bool{}
	for k := range live {
		liveStarts[k] = true
	}
	for i, span := range [][2]time.Time{{{}, killed}, {killed, time.Now()}} {
		s := proxy.summary(t, span[0], span[1], b, spec.Baselines[0], liveStarts, hist.minute)
		bound := s.batchBound
		if i == 0 {
			bound++ // the micro-batch killed between its read and its write
		}
		require.LessOrEqual(t, s.msearches, bound, "lifetime %d: _msearch requests vs micro-batches of the 1m query", i+1)
		require.Positive(t, s.msearches, "lifetime %d reads history", i+1)
		t.Logf("driver lifetime %d: %d micro-batches of the 1m query (%d documents written), %d _msearch requests (bound %d), "+
			"%d searches, %d documents asked (each (tenant, look-back window) once; without the cache %d), %d found",
			i+1, s.batches, s.docs, s.msearches, bound, s.searches, s.asked, s.uncached, s.found)
	}

	// Replay: batch mode for the hour, after the streaming job stopped.
	driver.Stop()
	before := e.hourDocs(t, m, blT0)
	stamps := e.computedAt(t, m)
	batchStart := time.Now()
	bcfg := e.jobsCfg
	bcfg.ESURL = proxy.URL
	var out bytes.Buffer
	err := jobs.RunBatch(context.Background(), bcfg, spec, blT0, &out, "--kafka-to", time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	require.NoError(t, err, tail(out.String(), 4000))
	after := e.hourDocs(t, m, blT0)
	require.Equal(t, keys(before), keys(after), "batch mode writes the same _ids")
	for id, doc := range after {
		require.Equal(t, jsonString(before[id]), jsonString(doc), "batch mode rewrites %s with the same values", id)
	}
	restamped := e.computedAt(t, m)
	for id := range after {
		require.NotEqual(t, stamps[id], restamped[id], "batch mode rewrote %s", id)
	}
	s := proxy.summary(t, batchStart, time.Now(), b, spec.Baselines[0], liveStarts, hist.minute)
	require.Equal(t, 1, s.msearches, "batch mode: one _msearch for the hour's %d 1m documents", len(want))
	require.Equal(t, len(want)*b.Lookback.Count, s.asked, "batch mode asks each look-back window of each document once")
	t.Logf("batch mode for %s: %d documents rewritten with the same _ids and values; 1 _msearch of %d searches, %d documents asked, %d found",
		blT0.Format(time.RFC3339), len(after), s.searches, s.asked, s.found)
	t.Logf("wall time %.0f s", time.Since(began).Seconds())
}

// ---- the test catalog ----

var exampleRequestRate = regexp.MustCompile(`(?ms)^  - name: request_rate\n.*?(?:\n\n|\z)`)

// newBaselineEnv is newStackEnv with a one-metric catalog: the baseline
// example's request_rate (renamed request_rate_<suffix>) with its baseline on
// the 1-minute windows instead of the 1-hour ones.
func newBaselineEnv(t *testing.T) (*stackEnv, catalog.Metric) {
	e := newStackEnv(t)
	const example = "../../metrics-jobs/catalog.yaml"
	text, err := os.ReadFile(example)
	require.NoError(t, err)
	head, _, ok := strings.Cut(string(text), "\nmetrics:\n")
	require.True(t, ok, "example catalog layout")
	block := exampleRequestRate.FindString(string(text))
	require.Contains(t, block, "window: 1h")
	block = strings.Replace(block, "name: request_rate", "name: request_rate_"+e.suffix, 1)
	block = strings.Replace(block, "window: 1h", "window: 1m", 1)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte(head+"\nmetrics:\n"+block), 0o644))
	e.catalogPath = path
	e.catalog, err = catalog.Load(path)
	require.NoError(t, err)
	require.Len(t, e.catalog.Metrics, 1)
	m := e.catalog.Metrics[0]
	// Its consumer groups (the stack env's cleanup removes its indices).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(e.brokers), Timeout: 10 * time.Second}
		_, _ = c.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{e.routerGroup, catalog.SparkSpec(m).ConsumerGroup}})
	})

	ex, err := catalog.Load(example)
	require.NoError(t, err)
	orig, ok := ex.Metric("request_rate")
	require.True(t, ok)
	same := m
	same.Name, same.Line = orig.Name, orig.Line
	same.Baselines = slices.Clone(m.Baselines)
	same.Baselines[0].Window, same.Baselines[0].Line = orig.Baselines[0].Window, orig.Baselines[0].Line
	require.Equal(t, orig, same, "the test metric is the example's request_rate but for the baseline's window")
	require.Equal(t, time.Minute, m.Baselines[0].Window.Duration)
	return e, m
}

// ---- history and traffic ----

var blT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const blDay = 24 * time.Hour

// blTenant shapes one tenant: its usual requests per minute (base) and the
// step of its history: the 7 days of a minute are base + k·scale for k a
// permutation of −3..3 (median base, MAD 2·scale), on the days it has.
type blTenant struct {
	name        string
	base, scale int64
	days        func(minute int) []int // history days present (1 = yesterday)
}

func allDays(int) []int { return []int{1, 2, 3, 4, 5, 6, 7} }

var blTenants = []blTenant{
	{"steady", 60, 1, allDays},
	{"busy", 120, 4, allDays},
	{"surge", 40, 1, allDays},
	{"flat", 30, 0, allDays},
	{"young", 50, 1, func(int) []int { return []int{1, 2, 3} }},
	{"gappy", 45, 2, func(minute int) []int {
		if minute >= 55 {
			return []int{6, 7}
		}
		return []int{1, 2, 3, 5, 6, 7}
	}},
	{"newcomer", 20, 1, func(int) []int { return nil }},
}

type blKey struct {
	tenant string
	start  time.Time
}

type blHistory struct {
	minute map[blKey]int64 // 1-minute documents
	docs   []esclient.BulkItem
}

// past returns the values of the look-back windows of (tenant, start) that
// have a document.
func (h blHistory) past(b catalog.Baseline, tenant string, start time.Time) []float64 {
	var out []float64
	for _, s := range b.Starts(start) {
		if v, ok := h.minute[blKey{tenant, s}]; ok {
			out = append(out, float64(v))
		}
	}
	return out
}

func baselineHistory() blHistory {
	rng := rand.New(rand.NewPCG(17, 17))
	h := blHistory{minute: map[blKey]int64{}}
	for _, tn := range blTenants {
		for minute := range 60 {
			perm := rng.Perm(7)
			for _, d := range tn.days(minute) {
				start := blT0.Add(-time.Duration(d)*blDay + time.Duration(minute)*time.Minute)
				v := tn.base + int64(perm[d-1]-3)*tn.scale
				h.minute[blKey{tn.name, start}] = v
			}
		}
	}
	return h
}

// historyDocs renders the history as the job's documents: 1-minute ones and,
// per day, the 1-hour one (the sum; a reader that ignored the window size
// would take it for the 00:00 minute).
func (h *blHistory) render(m catalog.Metric, output string) {
	hours := map[blKey]int64{}
	for k, v := range h.minute {
		h.docs = append(h.docs, metricDoc(m, output, time.Minute, k.start, k.tenant, v))
		hours[blKey{k.tenant, k.start.Truncate(time.Hour)}] += v
	}
	for k, v := range hours {
		h.docs = append(h.docs, metricDoc(m, output, time.Hour, k.start, k.tenant, v))
	}
}

func (e *stackEnv) writeHistory(t *testing.T, m catalog.Metric, h *blHistory) {
	require.Len(t, m.GroupBy, 1)
	h.render(m, m.Baselines[0].Output)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.es.Bulk(ctx, "", h.docs)
	require.NoError(t, err)
	require.NoError(t, e.es.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{catalog.Alias(m.Name)}}, "refresh", nil))
}

// baselineTraffic returns the live hour's count per (tenant, minute) and its
// records in event-time order: base ± one history step, the surge tenant
// 10× for 00:30-00:32, flat exactly its flat value.
func baselineTraffic() (map[blKey]int64, []record.Record) {
	rng := rand.New(rand.NewPCG(18, 18))
	g := gen.New(gen.Config{Seed: 18, Tenants: 1, Start: blT0, Rate: 100})
	live := map[blKey]int64{}
	var recs []record.Record
	for minute := range 60 {
		start := blT0.Add(time.Duration(minute) * time.Minute)
		for ti, tn := range blTenants {
			n := tn.base + int64(rng.IntN(3)-1)*tn.scale
			if tn.name == "surge" && minute >= 30 && minute < 33 {
				n = 10 * tn.base
			}
			live[blKey{tn.name, start}] = n
			for j := range n {
				r := g.Next()
				r.Tenant = tn.name
				r.Timestamp = start.Add(time.Duration(j)*time.Minute/time.Duration(n) + time.Duration(ti)*time.Millisecond)
				recs = append(recs, r)
			}
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp.Before(recs[j].Timestamp) })
	return live, recs
}

func windowValue(t *testing.T, m catalog.Metric, w *metriceval.Window, output string) float64 {
	for _, wt := range w.Wants(m) {
		if wt.Field == output {
			require.False(t, wt.Null)
			return wt.Value
		}
	}
	t.Fatalf("no output %s", output)
	return 0
}

func ptr(v float64) *float64 { return &v }

// ---- comparing the documents ----

// compareBaselineDocs checks every document of the live hour against the
// truth (counts) and want (baselines of the 1m documents, by _id), that the
// 1h documents carry no baseline, that there is no other document in the
// hour, and that the history documents have the job's documents' shape.
func (e *stackEnv) compareBaselineDocs(t *testing.T, m catalog.Metric, res *metriceval.Result, want map[string]metriceval.Baseline) []string {
	docs := e.searchAll(t, catalog.Alias(m.Name))
	b := m.Baselines[0]
	var bad []string
	var jobDoc, ourDoc map[string]any
	for _, w := range res.Windows {
		id := res.DocID(w)
		doc, ok := docs[id]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s %s %s: missing", w.Size, w.Start.Format(time.RFC3339), w.Group))
			continue
		}
		delete(docs, id)
		if doc["_index"] != res.Index(w) {
			bad = append(bad, fmt.Sprintf("%s: index %v, want %s", id, doc["_index"], res.Index(w)))
		}
		delete(doc, "_index")
		for _, p := range res.Compare(w, doc) {
			bad = append(bad, fmt.Sprintf("%s %s %s: %s", w.Size, w.Start.Format(time.RFC3339), w.Group, p))
		}
		bl, isBaselined := want[id]
		obj, has := doc[catalog.BaselineField].(map[string]any)
		switch {
		case !isBaselined && has:
			bad = append(bad, fmt.Sprintf("%s %s %s: a baseline on a %s document: %s", w.Size, w.Start.Format(time.RFC3339), w.Group, w.Size, jsonString(obj)))
		case isBaselined && !has:
			bad = append(bad, fmt.Sprintf("%s %s %s: no baseline object", w.Size, w.Start.Format(time.RFC3339), w.Group))
		case isBaselined:
			if len(obj) != 1 {
				bad = append(bad, fmt.Sprintf("%s: baseline objects %s, want only %s", id, jsonString(obj), b.Output))
			}
			for _, p := range bl.Compare(obj[b.Output]) {
				bad = append(bad, fmt.Sprintf("%s %s %s: baseline.%s.%s", w.Size, w.Start.Format(time.RFC3339), w.Group, b.Output, p))
			}
			jobDoc = doc
		}
	}
	for id, doc := range docs {
		start, _ := time.Parse(time.RFC3339, doc[catalog.DocWindow].(map[string]any)["start"].(string))
		if !start.Before(blT0) {
			bad = append(bad, fmt.Sprintf("unexpected document %s %s", id, jsonString(doc)))
		} else if doc[catalog.BaselineField] != nil {
			bad = append(bad, fmt.Sprintf("history document %s was rewritten: %s", id, jsonString(doc)))
		} else {
			ourDoc = doc
		}
	}
	if jobDoc != nil && ourDoc != nil && len(bad) == 0 {
		// The history documents have the shape of the job's (but the baseline).
		delete(ourDoc, "_index")
		delete(jobDoc, catalog.BaselineField)
		if s, w := docShape(ourDoc), docShape(jobDoc); s != w {
			bad = append(bad, fmt.Sprintf("history documents are shaped %s, the job's %s", s, w))
		}
	}
	return bad
}

// docShape renders the keys and JSON types of a document, sorted.
func docShape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		ks := make([]string, 0, len(x))
		for k := range x {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		var b strings.Builder
		for _, k := range ks {
			fmt.Fprintf(&b, "%s%s,", k, docShape(x[k]))
		}
		return "{" + strings.TrimSuffix(b.String(), ",") + "}"
	case string:
		return ":string"
	case float64:
		return ":number"
	case bool:
		return ":bool"
	case nil:
		return ":null"
	}
	return fmt.Sprintf(":%T", v)
}

// computedAt returns computed_at of the live hour's documents by _id.
func (e *stackEnv) computedAt(t *testing.T, m catalog.Metric) map[string]any {
	out := map[string]any{}
	for id, doc := range e.searchAll(t, catalog.Alias(m.Name)) {
		start, _ := time.Parse(time.RFC3339, doc[catalog.DocWindow].(map[string]any)["start"].(string))
		if !start.Before(blT0) {
			out[id] = doc[catalog.DocComputedAt]
		}
	}
	return out
}

// ---- the counting proxy in front of OpenSearch ----

// esProxy forwards everything to OpenSearch and records the _msearch requests
// (the history reads) and the _bulk requests carrying the metric's documents
// of the baseline's window size (one per micro-batch of that query).
type esProxy struct {
	URL    string
	metric catalog.Metric
	mu     sync.Mutex
	calls  []esCall
}

type esCall struct {
	at       time.Time
	searches []esSearch         // _msearch
	docs     int                // _bulk: documents of the baseline's window size
	starts   map[time.Time]bool // and their window starts
	written  []map[string]any   // and their sources
}

// esSearch is one search of an _msearch: its size and its term filters.
type esSearch struct {
	size          int
	windowSizes   []string
	windowStarts  []time.Time
	groups        []string
	unknownFilter []string
}

func newESProxy(t *testing.T, target string, m catalog.Metric) *esProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &esProxy{metric: m}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.record(r.URL.Path, body)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *esProxy) record(path string, body []byte) {
	c := esCall{at: time.Now(), starts: map[time.Time]bool{}}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, slices.Clone(sc.Bytes()))
		}
	}
	switch {
	case strings.HasSuffix(path, "/_msearch"):
		for i := 1; i < len(lines); i += 2 {
			c.searches = append(c.searches, p.parseSearch(lines[i]))
		}
		if len(c.searches) == 0 {
			c.searches = []esSearch{{unknownFilter: []string{"an _msearch without searches"}}}
		}
	case strings.HasSuffix(path, "/_bulk"):
		prefix := catalog.Alias(p.metric.Name) + "-"
		size := p.metric.Baselines[0].Window.String()
		for i := 0; i+1 < len(lines); i += 2 {
			var action map[string]struct {
				Index string `json:"_index"`
			}
			var src map[string]any
			if json.Unmarshal(lines[i], &action) != nil || json.Unmarshal(lines[i+1], &src) != nil {
				continue
			}
			win, _ := src[catalog.DocWindow].(map[string]any)
			if !strings.HasPrefix(action["index"].Index, prefix) || win == nil || win["size"] != size {
				continue
			}
			start, _ := time.Parse(time.RFC3339, fmt.Sprint(win["start"]))
			c.docs++
			c.starts[start] = true
			c.written = append(c.written, src)
		}
		if c.docs == 0 {
			return
		}
	default:
		return
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
}

// parseSearch reads the size and the term/terms filters of one search.
func (p *esProxy) parseSearch(line []byte) esSearch {
	var body struct {
		Size  int `json:"size"`
		Query any `json:"query"`
	}
	var s esSearch
	if err := json.Unmarshal(line, &body); err != nil {
		s.unknownFilter = append(s.unknownFilter, err.Error())
		return s
	}
	s.size = body.Size
	group := p.metric.GroupBy[0]
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				mm, isMap := c.(map[string]any)
				if (k != "term" && k != "terms") || !isMap {
					walk(c)
					continue
				}
				for field, val := range mm {
					vals, _ := val.([]any)
					if k == "term" {
						vals = []any{val}
					}
					for _, v := range vals {
						switch field {
						case catalog.DocWindow + ".size":
							s.windowSizes = append(s.windowSizes, fmt.Sprint(v))
						case catalog.DocWindow + ".start":
							ts, err := time.Parse(time.RFC3339, fmt.Sprint(v))
							if err != nil {
								s.unknownFilter = append(s.unknownFilter, fmt.Sprintf("window.start %v", v))
							}
							s.windowStarts = append(s.windowStarts, ts)
						case group:
							s.groups = append(s.groups, fmt.Sprint(v))
						default:
							s.unknownFilter = append(s.unknownFilter, k+" "+field)
						}
					}
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(body.Query)
	return s
}

// writes returns the sources of the documents of the baseline's window size
// written in [from, to), in order.
func (p *esProxy) writes(from, to time.Time) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, c := range p.calls {
		if !c.at.Before(from) && c.at.Before(to) {
			out = append(out, c.written...)
		}
	}
	return out
}

// batchesSince counts the _bulk requests carrying documents of the baseline's
// window size since t: the micro-batches of that query that wrote.
func (p *esProxy) batchesSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c.docs > 0 && !c.at.Before(t) {
			n++
		}
	}
	return n
}

type readSummary struct {
	batches, docs, batchBound                   int
	msearches, searches, asked, uncached, found int
}

// summary checks the reads made in [from, to) — one driver lifetime, whose
// cache starts empty — and returns their counts: every search within the
// spec's bounds, of the baseline's window size only, asking exactly the
// (group, start) pairs its size allows, each a look-back window of a live
// window and none asked twice.
func (p *esProxy) summary(t *testing.T, from, to time.Time, b catalog.Baseline, bs catalog.BaselineSpec, live map[blKey]bool, hist map[blKey]int64) readSummary {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s readSummary
	asked := map[blKey]bool{}
	for _, c := range p.calls {
		if c.at.Before(from) || !c.at.Before(to) {
			continue
		}
		if c.docs > 0 {
			s.batches++
			s.docs += c.docs
			s.uncached += c.docs * b.Lookback.Count
			s.batchBound += (len(c.starts) + bs.MaxSearchesPerRequest - 1) / bs.MaxSearchesPerRequest
			continue
		}
		s.msearches++
		require.LessOrEqual(t, len(c.searches), bs.MaxSearchesPerRequest, "searches in one _msearch")
		for _, q := range c.searches {
			require.Empty(t, q.unknownFilter, "filters of a history search")
			require.Equal(t, []string{b.Window.String()}, q.windowSizes, "a history search reads the baseline's window size only")
			require.LessOrEqual(t, q.size, bs.MaxDocsPerSearch)
			require.Equal(t, len(q.groups)*len(q.windowStarts), q.size, "a search's size is the (group, start) pairs it names")
			s.searches++
			s.asked += q.size
			for _, g := range q.groups {
				for _, st := range q.windowStarts {
					k := blKey{g, st}
					require.False(t, asked[k], "(%s, %s) asked twice in one driver lifetime: the cache", g, st.Format(time.RFC3339))
					asked[k] = true
					var of bool
					for i := 1; i <= b.Lookback.Count && !of; i++ {
						of = live[blKey{g, st.Add(time.Duration(i) * blDay)}]
					}
					require.True(t, of, "(%s, %s) is no look-back window of a live window", g, st.Format(time.RFC3339))
				}
			}
		}
	}
	for k := range asked {
		if _, ok := hist[k]; ok {
			s.found++
		}
	}
	return s
}
