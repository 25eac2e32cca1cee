// Package metriceval computes the exact value of every document a catalog
// metric produces from a set of records: the ground truth the metric jobs are
// tested against. Counts, sums, minima and maxima are exact; averages and
// ratios are float64 means; percentiles keep the sorted sample and distinct
// counts the exact set, so [Window.Compare] can check an approximate value
// against its documented error bound (catalog.JobSpec.Approximations).
package metriceval

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/record"
)

// Key identifies one metric document: window size, window start, group values.
type Key struct {
	Size  string    // window name as in documents: 1m, 1h
	Start time.Time // UTC
	Group string    // group-by values joined by "|"
}

// Window is the exact content of one metric document.
type Window struct {
	Key
	Length      time.Duration
	GroupValues []string
	Samples     int64
	values      map[string]*acc // by aggregation name
}

// Result is what a metric's jobs should write for a set of records.
type Result struct {
	Metric  catalog.Metric
	Windows map[Key]*Window
	// Late counts, per window, the records that Accept rejected for that window
	// size (records beyond the watermark).
	Late map[Key]int64
}

// Accept tells whether record i counts in its window of the given length
// (false: it arrived beyond the watermark). Nil accepts every record.
type Accept func(i int, window time.Duration) bool

// Evaluate computes the documents of metric m over recs: the records of the
// metric's topic (apply the metric's filter first, see Filter).
func Evaluate(m catalog.Metric, recs []record.Record, accept Accept) *Result {
	res := &Result{Metric: m, Windows: map[Key]*Window{}, Late: map[Key]int64{}}
	wheres := make([]func(*record.Record) bool, len(m.Aggregations))
	for i, a := range m.Aggregations {
		if len(a.Where) > 0 {
			wheres[i] = catalog.CompileFilter(a.Where)
		}
	}
	for i := range recs {
		r := &recs[i]
		group := make([]string, len(m.GroupBy))
		for j, g := range m.GroupBy {
			if v, ok := r.Text(g); ok {
				group[j] = v
			} else if n, ok := r.Number(g); ok {
				group[j] = fmt.Sprint(n)
			}
		}
		for _, w := range m.Windows {
			start := windowStart(r.Timestamp, w.Duration)
			key := Key{Size: w.String(), Start: start, Group: strings.Join(group, "|")}
			if accept != nil && !accept(i, w.Duration) {
				res.Late[key]++
				continue
			}
			win := res.Windows[key]
			if win == nil {
				win = &Window{Key: key, Length: w.Duration, GroupValues: group, values: map[string]*acc{}}
				for _, a := range m.Aggregations {
					win.values[a.Name] = &acc{agg: a, distinct: map[string]struct{}{}}
				}
				res.Windows[key] = win
			}
			win.Samples++
			for j, a := range m.Aggregations {
				win.values[a.Name].add(r, wheres[j])
			}
		}
	}
	for _, w := range res.Windows {
		for _, a := range w.values {
			slices.Sort(a.sample)
		}
	}
	return res
}

// Filter returns the records of recs that metric m's filter selects (what the
// router writes to the metric's topic).
func Filter(m catalog.Metric, recs []record.Record) []record.Record {
	match := catalog.CompileFilter(m.Filter)
	var out []record.Record
	for i := range recs {
		if match(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

// windowStart is the start of the tumbling window holding t, aligned to the
// Unix epoch as Spark's window() is.
func windowStart(t time.Time, d time.Duration) time.Time {
	us := t.UnixMicro()
	size := d.Microseconds()
	return time.UnixMicro(us - ((us%size)+size)%size).UTC()
}

// WindowEnd is the end of the window of length d holding t.
func WindowEnd(t time.Time, d time.Duration) time.Time { return windowStart(t, d).Add(d) }

// DocID is the document _id of w (catalog.DocID).
func (r *Result) DocID(w *Window) string {
	return catalog.DocID(r.Metric.Name, w.Length, w.Start, w.GroupValues...)
}

// Index is the index w is written to.
func (r *Result) Index(w *Window) string { return catalog.IndexName(r.Metric.Name, w.Start) }

type acc struct {
	agg      catalog.Aggregation
	n        int64   // values counted (count: matching records)
	matched  int64   // ratio: records matching Where
	sum      float64 // sum, avg
	min, max float64
	sample   []float64 // percentiles
	distinct map[string]struct{}
}

func (a *acc) add(r *record.Record, where func(*record.Record) bool) {
	switch a.agg.Fn {
	case catalog.FnRatio:
		a.n++
		if where(r) {
			a.matched++
		}
		return
	case catalog.FnCount:
		if where == nil || where(r) {
			a.n++
		}
		return
	}
	if where != nil && !where(r) {
		return
	}
	if a.agg.Fn == catalog.FnApproxDistinct {
		if v, ok := r.Text(a.agg.Field); ok {
			a.distinct[v] = struct{}{}
			a.n++ // values counted: the job clamps its estimate to this
		}
		return
	}
	v, ok := r.Number(a.agg.Field)
	if !ok {
		return
	}
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
	if a.agg.Fn == catalog.FnPercentiles {
		a.sample = append(a.sample, v)
	}
}

// Want is the expected value of one output field.
type Want struct {
	Field string
	Null  bool    // no value: the document holds null
	Value float64 // exact value (percentiles: the exact quantile by rank; distinct: the exact count)
	// How a document's value is compared: "exact", "relative" (1e-9),
	// "rank" (percentile rank error) or "hll" (relative standard deviation).
	Check string
	rank  rankCheck
	rsd   float64
	upper float64 // hll: the number of values counted, which the estimate never exceeds
}

type rankCheck struct {
	sorted []float64
	p      float64 // quantile, 0..1
	acc    int
}

// RelTol is the relative tolerance of averages and ratios.
const RelTol = 1e-9

// HLLSigmas is how many relative standard deviations an approximate distinct
// count may be off (4σ: a spurious failure about once in 15,000 windows).
const HLLSigmas = 4

// Wants lists the expected output fields of w, in the metric's output order.
func (w *Window) Wants(m catalog.Metric) []Want {
	var out []Want
	for _, ag := range m.Aggregations {
		a := w.values[ag.Name]
		switch ag.Fn {
		case catalog.FnCount:
			out = append(out, Want{Field: ag.Name, Value: float64(a.n), Check: "exact"})
		case catalog.FnSum:
			out = append(out, Want{Field: ag.Name, Value: a.sum, Check: "exact"})
		case catalog.FnAvg:
			out = append(out, Want{Field: ag.Name, Null: a.n == 0, Value: a.sum / float64(a.n), Check: "relative"})
		case catalog.FnMin:
			out = append(out, Want{Field: ag.Name, Null: a.n == 0, Value: a.min, Check: "exact"})
		case catalog.FnMax:
			out = append(out, Want{Field: ag.Name, Null: a.n == 0, Value: a.max, Check: "exact"})
		case catalog.FnRatio:
			out = append(out, Want{Field: ag.Name, Null: a.n == 0, Value: float64(a.matched) / float64(a.n), Check: "relative"})
		case catalog.FnApproxDistinct:
			out = append(out, Want{Field: ag.Name, Value: float64(len(a.distinct)), Check: "hll", rsd: ag.RSD, upper: float64(a.n)})
		case catalog.FnPercentiles:
			for i, name := range ag.Outputs() {
				p := ag.Percentiles[i] / 100
				wt := Want{Field: name, Null: len(a.sample) == 0, Check: "rank",
					rank: rankCheck{sorted: a.sample, p: p, acc: ag.Accuracy}}
				if len(a.sample) > 0 {
					wt.Value = a.sample[targetRank(p, len(a.sample))-1]
				}
				out = append(out, wt)
			}
		}
	}
	return out
}

// targetRank is the 1-based rank percentile_approx aims at: ceil(p·n), at least 1.
func targetRank(p float64, n int) int {
	r := int(math.Ceil(p * float64(n)))
	return max(1, min(r, n))
}

// Compare checks a document value (nil for JSON null) against the expectation
// and returns a description of the mismatch, or "".
func (wt Want) Compare(got any) string {
	if wt.Null {
		if got != nil {
			return fmt.Sprintf("%s: got %v, want null", wt.Field, got)
		}
		return ""
	}
	g, ok := got.(float64)
	if !ok {
		return fmt.Sprintf("%s: got %v (%T), want %v", wt.Field, got, got, wt.Value)
	}
	switch wt.Check {
	case "exact":
		if g != wt.Value {
			return fmt.Sprintf("%s: got %v, want exactly %v", wt.Field, g, wt.Value)
		}
	case "relative":
		if !Close(g, wt.Value, RelTol) {
			return fmt.Sprintf("%s: got %v, want %v (relative %g)", wt.Field, g, wt.Value, RelTol)
		}
	case "hll":
		if g > wt.upper {
			return fmt.Sprintf("%s: got %v, more than the %v values counted (the estimate is clamped)", wt.Field, g, wt.upper)
		}
		tol := math.Max(1, HLLSigmas*wt.rsd*wt.Value)
		if math.Abs(g-wt.Value) > tol {
			return fmt.Sprintf("%s: got %v, want %v ± %.1f (%d·rsd %g)", wt.Field, g, wt.Value, tol, HLLSigmas, wt.rsd)
		}
	case "rank":
		s := wt.rank.sorted
		n := len(s)
		lo := sort.SearchFloat64s(s, g) // values < g
		hi := sort.Search(n, func(i int) bool { return s[i] > g })
		if lo == hi {
			return fmt.Sprintf("%s: got %v, which is not one of the %d samples", wt.Field, g, n)
		}
		tol := int(math.Ceil(float64(n) / float64(wt.rank.acc)))
		r := targetRank(wt.rank.p, n)
		if r < lo+1-tol || r > hi+tol {
			return fmt.Sprintf("%s: got %v with rank %d..%d of %d, want rank %d ± %d (exact value %v)",
				wt.Field, g, lo+1, hi, n, r, tol, wt.Value)
		}
	}
	return ""
}

// Close reports whether a and b agree to rel relative error.
func Close(a, b, rel float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

// Compare checks a metric document (decoded JSON) against w: metric, group
// fields, window, samples and every output. It returns every mismatch.
func (r *Result) Compare(w *Window, doc map[string]any) []string {
	var bad []string
	if doc[catalog.DocMetric] != r.Metric.Name {
		bad = append(bad, fmt.Sprintf("metric: got %v", doc["metric"]))
	}
	for i, g := range r.Metric.GroupBy {
		if fmt.Sprint(doc[g]) != w.GroupValues[i] {
			bad = append(bad, fmt.Sprintf("%s: got %v, want %s", g, doc[g], w.GroupValues[i]))
		}
	}
	win, _ := doc[catalog.DocWindow].(map[string]any)
	wantWin := map[string]any{catalog.WindowStart: w.Start.Format(time.RFC3339), catalog.WindowEnd: w.Start.Add(w.Length).Format(time.RFC3339),
		catalog.WindowSize: w.Size}
	for k, v := range wantWin {
		if win[k] != v {
			bad = append(bad, fmt.Sprintf("window.%s: got %v, want %v", k, win[k], v))
		}
	}
	if doc[catalog.DocSamples] != float64(w.Samples) {
		bad = append(bad, fmt.Sprintf("samples: got %v, want %d", doc[catalog.DocSamples], w.Samples))
	}
	for _, wt := range w.Wants(r.Metric) {
		v, present := doc[wt.Field]
		if !present {
			bad = append(bad, wt.Field+": missing")
			continue
		}
		if msg := wt.Compare(v); msg != "" {
			bad = append(bad, msg)
		}
	}
	return bad
}

// Document is the metric document of w as a metric job writes it (metric,
// the group-by fields, window, samples, every output, computed_at), with the
// exact values: a percentile is the exact quantile by rank, a distinct count
// the exact count. `hourglass gen history` writes such documents as the
// history a baseline reads.
func (r *Result) Document(w *Window, computedAt time.Time) map[string]any {
	doc := map[string]any{catalog.DocMetric: r.Metric.Name}
	for i, g := range r.Metric.GroupBy {
		doc[g] = w.GroupValues[i]
	}
	doc[catalog.DocWindow] = map[string]any{
		catalog.WindowStart: w.Start.UTC().Format(time.RFC3339),
		catalog.WindowEnd:   w.Start.Add(w.Length).UTC().Format(time.RFC3339),
		catalog.WindowSize:  w.Size,
	}
	doc[catalog.DocSamples] = w.Samples
	for _, want := range w.Wants(r.Metric) {
		if want.Null {
			doc[want.Field] = nil
		} else {
			doc[want.Field] = want.Value
		}
	}
	doc[catalog.DocComputedAt] = computedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	return doc
}
