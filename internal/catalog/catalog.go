package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Catalog is a loaded, validated metric catalog with defaults applied.
type Catalog struct {
	Metrics []Metric
}

// Metric is one catalog entry.
type Metric struct {
	Name            string
	Description     string
	Filter          []Condition   // all must hold; empty = every record
	Fields          []string      // projected fields besides timestamp and group-by
	GroupBy         []string      // group key fields; default [tenant]
	Windows         []Duration    // window sizes; default [1m, 1h]
	Aggregations    []Aggregation // at least one
	AllowedLateness Duration      // watermark delay; default 10m
	FreshnessSLA    Duration      // default 1h
	Partitions      int           // partitions of the metric topic; default 3
	Baselines       []Baseline    // history-aware outputs; at most one per output
	Line            int           // line of the entry in the file
}

// Baseline compares one output of one window size with the same output in
// earlier windows of the same group (read back from Elasticsearch by the job)
// and flags the window as anomalous. See doc.go, "Baselines".
type Baseline struct {
	Output     string    // an output of the metric (Metric.Outputs)
	Window     Duration  // the window size whose documents carry the baseline
	Lookback   Lookback  // which earlier windows
	Statistic  Statistic // how they make the expected value and the spread
	Z          float64   // anomalous when |score| >= Z; > 0
	MinSamples int       // fewer past windows than this: no score, never anomalous; 2..Lookback.Samples()
	Line       int
}

// Lookback chooses the earlier windows of a baseline.
type Lookback struct {
	Kind  LookbackKind
	Count int // days for same_window_of_day (1-28), windows for last_windows (1-1000)
}

// LookbackKind is how a baseline looks back.
type LookbackKind string

const (
	// LookbackSameWindowOfDay: the windows starting at the same time of day on
	// each of the Count previous days (start − k·24h, k = 1..Count).
	LookbackSameWindowOfDay LookbackKind = "same_window_of_day"
	// LookbackLastWindows: the Count windows just before (start − k·size).
	LookbackLastWindows LookbackKind = "last_windows"
)

// Samples is the number of earlier windows the lookback names (the most
// samples a baseline can have).
func (l Lookback) Samples() int { return l.Count }

// Step is the distance between two consecutive look-back window starts.
func (l Lookback) Step(window time.Duration) time.Duration {
	if l.Kind == LookbackSameWindowOfDay {
		return 24 * time.Hour
	}
	return window
}

// Starts lists the look-back window starts of the window starting at start,
// nearest first: start − k·step, k = 1..Count. The driver computes the same
// list from the job spec (step_seconds, lookback_count).
func (b Baseline) Starts(start time.Time) []time.Time {
	step := b.Lookback.Step(b.Window.Duration)
	out := make([]time.Time, b.Lookback.Count)
	for k := range out {
		out[k] = start.UTC().Add(-time.Duration(k+1) * step)
	}
	return out
}

// Statistic is how a baseline summarizes the past values.
type Statistic string

const (
	// StatMeanStddev: expected = mean, spread = sample standard deviation (n−1).
	StatMeanStddev Statistic = "mean_stddev"
	// StatMedianMAD: expected = median, spread = 1.4826 × median absolute deviation.
	StatMedianMAD Statistic = "median_mad"
)

// MADScale makes the MAD a consistent estimator of the standard deviation of
// normally distributed values, so that z thresholds mean the same for both
// statistics.
const MADScale = 1.4826

// BaselineField is the document object holding the baselines: each baselined
// output writes BaselineField.<output>.{expected, spread, lower, upper, score,
// anomaly, samples} (the Baseline* leaves).
const BaselineField = "baseline"

// Leaves of a baseline object (BaselineField.<output>), in BaselineLeaves
// order. The job spec carries the list (BaselineSpec.Leaves) and the driver
// refuses a spec whose leaves are not the ones it writes.
const (
	BaselineExpected = "expected" // double or null: mean or median of the past values
	BaselineSpread   = "spread"   // double or null: sample standard deviation, or MADScale × MAD
	BaselineLower    = "lower"    // double or null: expected − z·spread (null below min_samples)
	BaselineUpper    = "upper"    // double or null: expected + z·spread
	BaselineScore    = "score"    // double or null: (value − expected) / spread
	BaselineAnomaly  = "anomaly"  // boolean, always present
	BaselineSamples  = "samples"  // long, always present: past windows found (0: no history)
)

// BaselineLeaves lists a baseline object's leaves in document order.
var BaselineLeaves = []string{BaselineExpected, BaselineSpread, BaselineLower, BaselineUpper, BaselineScore, BaselineAnomaly, BaselineSamples}

// Condition is one clause of a structured filter.
type Condition struct {
	Field string
	Op    Op
	Value any   // string or float64, per the field's type; nil for exists/in/not_in
	List  []any // for in / not_in
}

// Op is a filter operator.
type Op string

const (
	OpEq     Op = "eq"
	OpNe     Op = "ne"
	OpLt     Op = "lt"
	OpLte    Op = "lte"
	OpGt     Op = "gt"
	OpGte    Op = "gte"
	OpIn     Op = "in"
	OpNotIn  Op = "not_in"
	OpPrefix Op = "prefix"
	OpExists Op = "exists"
)

// Aggregation is one computed value of a metric document.
type Aggregation struct {
	Name        string      // output field; percentiles add _p<N> suffixes
	Fn          Fn          // aggregate function
	Field       string      // input field; empty for count and ratio
	Where       []Condition // count/sum/... only records matching; required for ratio
	Percentiles []float64   // for percentiles: each in (0, 100)
	Accuracy    int         // percentiles: Spark percentile_approx accuracy; default 10000 (rank error ≤ 1/10000)
	RSD         float64     // approx_distinct: relative standard deviation; default 0.01
}

// Fn is an aggregate function.
type Fn string

const (
	FnCount          Fn = "count"
	FnSum            Fn = "sum"
	FnAvg            Fn = "avg"
	FnMin            Fn = "min"
	FnMax            Fn = "max"
	FnPercentiles    Fn = "percentiles"
	FnApproxDistinct Fn = "approx_distinct"
	FnRatio          Fn = "ratio"
)

// Duration is a time.Duration written in YAML as "1m", "1h", "90s".
type Duration struct{ time.Duration }

// String renders the duration compactly: 1m, 1h, 90s → 1m30s, 1h30m.
func (d Duration) String() string {
	if d.Duration%time.Second != 0 || d.Duration <= 0 {
		return d.Duration.String()
	}
	secs := int64(d.Duration / time.Second)
	h, m, sec := secs/3600, secs/60%60, secs%60
	var b strings.Builder
	for _, part := range []struct {
		n    int64
		unit string
	}{{h, "h"}, {m, "m"}, {sec, "s"}} {
		if part.n > 0 {
			fmt.Fprintf(&b, "%d%s", part.n, part.unit)
		}
	}
	return b.String()
}

// Output names of a metric document that aggregations may not use.
var reserved = []string{DocMetric, record.FieldTenant, DocWindow, DocSamples, DocComputedAt, DocLateRecords, "group", BaselineField}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	outputRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// Load reads and validates a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates catalog YAML. The error lists every problem,
// each naming the metric, the key and the line.
func Parse(data []byte) (*Catalog, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	p := &parser{}
	c := p.catalog(&doc)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return c, nil
}

// Metric returns the metric named name.
func (c *Catalog) Metric(name string) (Metric, bool) {
	for _, m := range c.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Projection is the list of fields the router writes to the metric's topic:
// timestamp, the group-by fields, then the declared fields.
func (m Metric) Projection() []string {
	out := []string{record.FieldTimestamp}
	for _, f := range append(slices.Clone(m.GroupBy), m.Fields...) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// Outputs lists the value fields of the metric's documents, in order.
func (m Metric) Outputs() []string {
	var out []string
	for _, a := range m.Aggregations {
		out = append(out, a.Outputs()...)
	}
	return out
}

// Outputs lists the document fields an aggregation produces.
func (a Aggregation) Outputs() []string {
	if a.Fn != FnPercentiles {
		return []string{a.Name}
	}
	out := make([]string, len(a.Percentiles))
	for i, p := range a.Percentiles {
		out[i] = a.Name + "_" + PercentileSuffix(p)
	}
	return out
}

// PercentileSuffix names a percentile: 50 → p50, 99.9 → p99_9.
func PercentileSuffix(p float64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", p), "0"), ".")
	return "p" + strings.ReplaceAll(s, ".", "_")
}
