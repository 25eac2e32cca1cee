package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/retry"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// JobSpec is one metric compiled for the PySpark driver. The driver executes
// it without interpreting the catalog: every expression is Spark SQL written
// here. Field order and JSON names are a contract with metrics-jobs/.
type JobSpec struct {
	Metric        string `json:"metric"`
	Description   string `json:"description"`
	Topic         string `json:"topic"`
	ConsumerGroup string `json:"consumer_group"`
	// SchemaDDL parses the topic's JSON values (from_json). The timestamp is
	// read as a string and converted by EventTimeSQL, which accepts any RFC 3339
	// form the router writes.
	SchemaDDL string `json:"schema_ddl"`
	// EventTimeSQL converts the timestamp field; try_cast, so that under ANSI
	// mode a value that is not a timestamp gives null (the row is dropped)
	// instead of failing the micro-batch on every replay.
	EventTimeSQL string `json:"event_time_sql"`
	// HeadEventTimeSQL is EventTimeSQL's value read from the head of the
	// record's value (ValueColumn, a string) without parsing the JSON: the
	// router writes every metric topic value with record.AppendProjection
	// over Metric.Projection, whose first field is the timestamp, so the value
	// begins with record.ProjectionHead and the time up to the next '"'. Null
	// for a value that does not begin so (the driver then parses it). The late
	// query classifies every row with it and parses only the rows it keeps.
	HeadEventTimeSQL string `json:"head_event_time_sql"`
	ValueColumn      string `json:"value_column"`
	// KafkaTimestampColumn is the name under which the driver keeps the Kafka
	// record's timestamp beside the parsed fields (not a record field name).
	KafkaTimestampColumn string `json:"kafka_timestamp_column"`
	// OutOfRangeSQL is true for a row whose event time is more than
	// MaxFutureSeconds after its Kafka timestamp. The driver drops such rows
	// before withWatermark (and counts them in hourglass-late-<metric>, reason
	// out_of_range): one watermark serves every tenant, so one far-future row
	// would make every tenant's records late. The router rejects the same rows;
	// this is the second line of defence. It references event_time (the value
	// of EventTimeSQL) and KafkaTimestampColumn.
	OutOfRangeSQL    string `json:"out_of_range_sql"`
	MaxFutureSeconds int64  `json:"max_future_seconds"`
	// OutOfRangeColumn is the boolean column the driver keeps OutOfRangeSQL's
	// value in (false when null); AcceptedSQL keeps the other rows, the only
	// ones that reach withWatermark and the windows.
	OutOfRangeColumn string `json:"out_of_range_column"`
	AcceptedSQL      string `json:"accepted_sql"`
	// FilterSQL is the metric's filter over RAW records (batch mode reading the
	// archive). Never apply it to the metric topic: the router filtered those
	// already and projected away the columns it tests.
	FilterSQL string      `json:"filter_sql"`
	Watermark string      `json:"watermark"` // Spark interval: the allowed lateness
	Windows   []WindowRef `json:"windows"`
	// WindowsSQL is a generator over a parsed row: one row per window size,
	// with the columns window_size (a Windows name) and window (struct start,
	// end: the tumbling window of that size holding event_time, aligned to
	// the epoch as Spark's window() aligns it). The driver aggregates every
	// size in one streaming aggregation, grouped by (window_size, window,
	// group_by...), with window marked as the watermarked column: Spark then
	// drops a row and evicts a group when that row's own window ends at or
	// before the watermark — each size closes at its own end, as it did with
	// one query per size — while the topic is read and parsed once.
	WindowsSQL string   `json:"windows_sql"`
	GroupBy    []string `json:"group_by"`
	// Aggregations run in groupBy(window_size, window, group_by...).agg(...),
	// each "<expr> AS <alias>"; Outputs then select the document's value
	// fields (in RowSQL).
	Aggregations []string `json:"aggregations"`
	Outputs      []string `json:"outputs"`
	OutputFields []string `json:"output_fields"`
	// Elasticsearch: documents go to IndexSQL's value (a monthly index behind
	// Alias) with _id = IDSQL's value. The session time zone must be UTC.
	Alias string `json:"alias"`
	// LateIndex counts the records that reached no window: late beyond the
	// watermark and out of range (documents with a reason, LateDocuments).
	LateIndex     string   `json:"late_index"`
	LateDocuments LateSpec `json:"late_documents"`
	IndexSQL      string   `json:"index_sql"`
	IDSQL         string   `json:"id_sql"`
	// RowSQL selects, from one row of the aggregation, what DocumentSQL
	// reads: window, the group-by fields, samples, the outputs, window_size.
	RowSQL []string `json:"row_sql"`
	// DocumentSQL turns a row of RowSQL into the document:
	// "<IDSQL> AS _id", "<IndexSQL> AS _index" and "<JSON> AS _source", whose
	// top-level fields are DocumentFields, in order.
	DocumentSQL     []string `json:"document_sql"`
	DocumentFields  []string `json:"document_fields"`
	SessionTimeZone string   `json:"session_time_zone"`
	FreshnessSLA    string   `json:"freshness_sla"`
	// RetryableStatuses are the HTTP statuses (of a bulk request, of one of
	// its items, of a history read) worth another attempt, as inclusive
	// ranges: internal/retry's classification, the one every Go sink uses.
	// Any other failed status is permanent. An answer that never came
	// (connection error, timeout) is retryable too.
	RetryableStatuses []StatusRange `json:"retryable_statuses"`
	Approximations    []Error       `json:"approximations,omitempty"`
	// Baselines: outputs compared with their own history (read back from
	// Alias) before the documents are written. Absent when the metric has none,
	// so such specs are unchanged.
	Baselines []BaselineSpec `json:"baselines,omitempty"`
	// JobRuns: where batch mode records its runs (jobruns.go).
	JobRuns JobRunsSpec `json:"job_runs"`
}

// BaselineSpec is one baseline compiled for the driver
// (metrics-jobs/hourglass_jobs/baseline.py). The driver computes the
// look-back window starts of a window starting at S as S − k·StepSeconds,
// k = 1..LookbackCount, reads those windows' documents of the same group from
// ReadAlias (documents of size Window only), and writes DocumentField.
type BaselineSpec struct {
	Output        string `json:"output"`         // the output compared (a field of the document)
	Window        string `json:"window"`         // the window size whose documents carry it: 1h
	WindowSeconds int64  `json:"window_seconds"` // its length
	DocumentField string `json:"document_field"` // baseline.<output>: the object written
	// Leaves are the object's fields (BaselineLeaves), in document order.
	Leaves    []string `json:"leaves"`
	ReadAlias string   `json:"read_alias"` // where the earlier windows are
	// ReadFields are the _source fields read: the group-by fields, window.start, the output.
	ReadFields    []string `json:"read_fields"`
	Lookback      string   `json:"lookback"`       // same_window_of_day | last_windows
	LookbackCount int      `json:"lookback_count"` // past windows named (days or windows)
	StepSeconds   int64    `json:"step_seconds"`   // distance between look-back starts
	Statistic     string   `json:"statistic"`      // mean_stddev | median_mad
	// Spread says how the spread is computed: "sample_stddev" (n−1) or "mad" (× MADScale).
	Spread     string  `json:"spread"`
	MADScale   float64 `json:"mad_scale,omitempty"`
	Z          float64 `json:"z"`
	MinSamples int     `json:"min_samples"`
	// Bounds of the reads: documents per search (≤ index.max_result_window),
	// searches per _msearch request. One request per micro-batch unless the
	// batch needs more searches than that.
	MaxDocsPerSearch      int `json:"max_docs_per_search"`
	MaxSearchesPerRequest int `json:"max_searches_per_request"`
	// The cache of past values, keyed by (group, time of day of the window
	// start); TTL 0 = no cache (last_windows: the previous window may still be
	// updated by late records).
	CacheTTLSeconds int64 `json:"cache_ttl_seconds"`
	CacheMaxEntries int   `json:"cache_max_entries"`
}

// Read bounds and cache of the baselines (BaselineSpec).
const (
	BaselineMaxDocsPerSearch      = 10000 // the default index.max_result_window
	BaselineMaxSearchesPerRequest = 100
	BaselineCacheTTL              = time.Hour
	BaselineCacheMaxEntries       = 100_000
)

func baselineSpec(m Metric, b Baseline) BaselineSpec {
	bs := BaselineSpec{
		Output:                b.Output,
		Window:                b.Window.String(),
		WindowSeconds:         int64(b.Window.Duration / time.Second),
		DocumentField:         BaselineField + "." + b.Output,
		Leaves:                slices.Clone(BaselineLeaves),
		ReadAlias:             Alias(m.Name),
		ReadFields:            append(append(slices.Clone(m.GroupBy), DocWindow+"."+WindowStart), b.Output),
		Lookback:              string(b.Lookback.Kind),
		LookbackCount:         b.Lookback.Count,
		StepSeconds:           int64(b.Lookback.Step(b.Window.Duration) / time.Second),
		Statistic:             string(b.Statistic),
		Spread:                "sample_stddev",
		Z:                     b.Z,
		MinSamples:            b.MinSamples,
		MaxDocsPerSearch:      BaselineMaxDocsPerSearch,
		MaxSearchesPerRequest: BaselineMaxSearchesPerRequest,
		CacheMaxEntries:       BaselineCacheMaxEntries,
	}
	if b.Statistic == StatMedianMAD {
		bs.Spread, bs.MADScale = "mad", MADScale
	}
	if b.Lookback.Kind == LookbackSameWindowOfDay {
		bs.CacheTTLSeconds = int64(BaselineCacheTTL / time.Second)
	}
	return bs
}

// WindowRef is one window size in the forms the driver and documents need.
type WindowRef struct {
	Name     string `json:"name"`     // as in the catalog and in documents: 1m, 1h
	Seconds  int64  `json:"seconds"`  // length
	Interval string `json:"interval"` // Spark interval string: "60 seconds"
}

// LateSpec compiles the documents of the late index (LateIndex): per group,
// the records of a micro-batch of the job's late query that reached no
// window. Before evaluating it, the driver adds to each micro-batch (the
// parsed rows: event_time, the Kafka timestamp, the out-of-range flag, the
// group-by fields) the literal columns BatchIDColumn (the micro-batch id),
// EpochColumn (the epoch of the late query's state) and WatermarkColumn (the
// watermark the batch is classified with, ms since the Unix epoch; the driver
// evaluates Late only when it is > 0 and the batch has accepted rows).
type LateSpec struct {
	BatchIDColumn   string `json:"batch_id_column"`
	EpochColumn     string `json:"epoch_column"`
	WatermarkColumn string `json:"watermark_column"`
	// RecordsColumn is selected by each DocumentSQL beside _id, _index and
	// _source: the records the document counts (for the driver's log).
	RecordsColumn string   `json:"records_column"`
	Late          DropSpec `json:"late"`         // reason late: behind the watermark
	OutOfRange    DropSpec `json:"out_of_range"` // reason out_of_range: too far after the Kafka timestamp
}

// DropSpec is one kind of late-index document. The driver computes them as
//
//	batch.selectExpr(RowsSQL...).where(WhereSQL).groupBy(GroupBy...).agg(Aggregations...).selectExpr(DocumentSQL...)
//
// CandidateSQL is a cheap test on a row of the batch (before RowsSQL) that
// every row the documents count passes: the driver reads the batch once,
// keeps only the rows that pass some kind's CandidateSQL (usually none),
// and computes a kind's documents only when a row passed its test.
// and writes each row's _source at _index with _id; DocumentSQL also selects
// LateSpec.RecordsColumn. The _id hashes the metric,
// the window or the reason, the group values, the epoch and the batch id: a
// replayed batch overwrites its documents.
type DropSpec struct {
	Reason         string   `json:"reason"`
	CandidateSQL   string   `json:"candidate_sql"`
	RowsSQL        []string `json:"rows_sql"`
	WhereSQL       string   `json:"where_sql"`
	GroupBy        []string `json:"group_by"`
	Aggregations   []string `json:"aggregations"`
	DocumentSQL    []string `json:"document_sql"`
	DocumentFields []string `json:"document_fields"`
}

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Error documents the approximation of an output: which field, how computed
// and its error bound.
type Error struct {
	Field string `json:"field"`
	Bound string `json:"bound"`
}

// MarshalSpec renders a job spec as indented JSON without HTML escaping
// (Spark SQL has < and >), the form `hourglass catalog render spark` prints.
func MarshalSpec(s JobSpec) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("catalog: encode spark spec %s: %w", s.Metric, err)
	}
	return b.Bytes(), nil
}

// SparkSpec compiles one metric for the PySpark driver.
func SparkSpec(m Metric) JobSpec {
	s := JobSpec{
		Metric:        m.Name,
		Description:   m.Description,
		Topic:         topology.MetricTopic(m.Name),
		ConsumerGroup: topology.MetricGroup(m.Name),
		EventTimeSQL:  eventTimeSQL(quote(record.FieldTimestamp)),
		HeadEventTimeSQL: fmt.Sprintf("CASE WHEN startswith(%s, %s) THEN %s END", quote(ValueColumn), sqlString(record.ProjectionHead),
			eventTimeSQL(fmt.Sprintf("substring_index(substr(%s, %d), '\"', 1)", quote(ValueColumn), len(record.ProjectionHead)+1))),
		ValueColumn: ValueColumn,
		// TODO(issue 12): take the router's configured bound once specs are
		// rendered with the deployment's configuration; the default for now.
		KafkaTimestampColumn: KafkaTimestampColumn,
		OutOfRangeSQL:        outOfRangeSQL(record.DefaultMaxFuture),
		MaxFutureSeconds:     int64(record.DefaultMaxFuture / time.Second),
		OutOfRangeColumn:     OutOfRangeColumn,
		JobRuns:              jobRunsSpec(),
		AcceptedSQL:          "NOT " + quote(OutOfRangeColumn),
		FilterSQL:            FilterSQL(m.Filter),
		Watermark:            sparkInterval(m.AllowedLateness.Duration),
		GroupBy:              m.GroupBy,
		Alias:                Alias(m.Name),
		LateIndex:            LateIndex(m.Name),
		SessionTimeZone:      "UTC",
		FreshnessSLA:         m.FreshnessSLA.String(),
		OutputFields:         m.Outputs(),
	}
	var cols []string
	for _, f := range m.Projection() {
		rf, _ := record.Lookup(f)
		cols = append(cols, quote(f)+" "+sparkType(rf.Type))
	}
	s.SchemaDDL = strings.Join(cols, ", ")
	for _, w := range m.Windows {
		s.Windows = append(s.Windows, WindowRef{
			Name: w.String(), Seconds: int64(w.Duration / time.Second), Interval: sparkInterval(w.Duration),
		})
	}
	s.Aggregations = append(s.Aggregations, "count(1) AS samples")
	for _, a := range m.Aggregations {
		aggs, outs, approx := compileAggregation(a)
		s.Aggregations = append(s.Aggregations, aggs...)
		s.Outputs = append(s.Outputs, outs...)
		s.Approximations = append(s.Approximations, approx...)
	}
	for _, b := range m.Baselines {
		s.Baselines = append(s.Baselines, baselineSpec(m, b))
	}
	metricDocument(&s, m)
	s.LateDocuments = lateDocuments(m, s.Windows, s.MaxFutureSeconds)
	for _, r := range retry.RetryableStatuses() {
		s.RetryableStatuses = append(s.RetryableStatuses, StatusRange{From: r.From, To: r.To})
	}
	return s
}

// outOfRangeSQL is true when event_time is more than maxFuture after the Kafka
// timestamp. A record without a Kafka timestamp (-1, shown as 1969-12-31) is
// not judged.
func outOfRangeSQL(maxFuture time.Duration) string {
	k := quote(KafkaTimestampColumn)
	return fmt.Sprintf("(unix_millis(%s) > 0 AND unix_micros(event_time) > unix_micros(%s) + %d)",
		k, k, maxFuture.Microseconds())
}

// maxBigint is the largest BIGINT (the documents' long fields).
const maxBigint = "9223372036854775807"

// compileAggregation returns the agg expressions, the output select
// expressions and any approximation notes of one aggregation.
func compileAggregation(a Aggregation) (aggs, outs []string, approx []Error) {
	input := quote(a.Field)
	if len(a.Where) > 0 && a.Fn != FnRatio {
		value := input
		if a.Fn == FnCount {
			value = "1"
		}
		input = "CASE WHEN " + FilterSQL(a.Where) + " THEN " + value + " END"
	}
	name := quote(a.Name)
	switch a.Fn {
	case FnCount:
		if len(a.Where) == 0 {
			input = "1"
		}
		aggs = []string{"count(" + input + ") AS " + name}
	case FnSum:
		// Integer fields are summed as DECIMAL(38,0): a BIGINT sum overflows
		// under ANSI mode (the micro-batch fails on every replay) after 2^23
		// records of MaxBytes in one window; the result is exact up to the
		// largest BIGINT and saturates there (the document field is a long).
		// Float fields are bounded (MaxMillis), so their double sum is finite.
		if f, _ := record.Lookup(a.Field); f.Type == record.TypeInt {
			aggs = []string{"CAST(least(coalesce(sum(CAST(" + input + " AS DECIMAL(38,0))), 0), " + maxBigint + ") AS BIGINT) AS " + name}
		} else {
			aggs = []string{"coalesce(sum(" + input + "), 0) AS " + name}
		}
	case FnAvg, FnMin, FnMax:
		aggs = []string{string(a.Fn) + "(" + input + ") AS " + name}
	case FnRatio:
		aggs = []string{"avg(CASE WHEN " + FilterSQL(a.Where) + " THEN 1.0D ELSE 0.0D END) AS " + name}
	case FnApproxDistinct:
		// The estimate can exceed the number of values it counts (317 clients
		// for 316 records): clamp it there.
		aggs = []string{fmt.Sprintf("least(approx_count_distinct(%s, %s), count(%s)) AS %s", input, formatFloat(a.RSD), input, name)}
		approx = []Error{{a.Name, fmt.Sprintf("HyperLogLog++, relative standard deviation %s, at most the number of values", formatFloat(a.RSD))}}
	case FnPercentiles:
		ps := make([]string, len(a.Percentiles))
		for i, p := range a.Percentiles {
			ps[i] = formatFloat(math.Round(p*1e6) / 1e8) // 99.9 → 0.999, not 0.9990000000000001
		}
		tmp := quote("_" + a.Name + "_pct")
		aggs = []string{fmt.Sprintf("percentile_approx(%s, array(%s), %d) AS %s", input, strings.Join(ps, ", "), a.Accuracy, tmp)}
		for i, o := range a.Outputs() {
			outs = append(outs, fmt.Sprintf("%s[%d] AS %s", tmp, i, quote(o)))
			approx = append(approx, Error{o, fmt.Sprintf("percentile_approx, rank error at most 1/%d of the samples", a.Accuracy)})
		}
		return aggs, outs, approx
	}
	return aggs, []string{name}, approx
}

// FilterSQL renders conditions as a Spark SQL boolean expression, "true" when empty.
func FilterSQL(conds []Condition) string {
	if len(conds) == 0 {
		return "true"
	}
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = conditionSQL(c)
	}
	return strings.Join(parts, " AND ")
}

func conditionSQL(c Condition) string {
	col := quote(c.Field)
	f, _ := record.Lookup(c.Field)
	text := f.Type == record.TypeString || f.Type == record.TypeIP
	lit := func(v any) string {
		if s, ok := v.(string); ok {
			return sqlString(s)
		}
		return formatFloat(v.(float64))
	}
	list := func() string {
		ls := make([]string, len(c.List))
		for i, v := range c.List {
			ls[i] = lit(v)
		}
		return strings.Join(ls, ", ")
	}
	// Absent text fields arrive as null or "": treat both as absent, as Go does.
	present, absent := col+" IS NOT NULL", col+" IS NULL"
	if text {
		present, absent = "("+col+" IS NOT NULL AND "+col+" <> '')", col+" IS NULL OR "+col+" = ''"
	}
	switch c.Op {
	case OpExists:
		return present
	case OpEq:
		return "(" + col + " = " + lit(c.Value) + ")"
	case OpNe:
		return "(" + absent + " OR " + col + " <> " + lit(c.Value) + ")"
	case OpLt:
		return "(" + col + " < " + lit(c.Value) + ")"
	case OpLte:
		return "(" + col + " <= " + lit(c.Value) + ")"
	case OpGt:
		return "(" + col + " > " + lit(c.Value) + ")"
	case OpGte:
		return "(" + col + " >= " + lit(c.Value) + ")"
	case OpIn:
		return "(" + col + " IN (" + list() + "))"
	case OpNotIn:
		return "(" + absent + " OR " + col + " NOT IN (" + list() + "))"
	case OpPrefix:
		return "startswith(" + col + ", " + lit(c.Value) + ")"
	}
	panic("catalog: unvalidated op " + string(c.Op)) // Parse rejects unknown ops
}

func sparkType(t record.Type) string {
	switch t {
	case record.TypeInt:
		return "BIGINT"
	case record.TypeFloat:
		return "DOUBLE"
	default: // strings, IPs, and timestamps (converted by EventTimeSQL)
		return "STRING"
	}
}

func sparkInterval(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + " seconds"
}

func quote(ident string) string { return "`" + ident + "`" }

// eventTimeSQL converts a timestamp string (RFC 3339) to the event time.
func eventTimeSQL(s string) string { return "try_cast(" + s + " AS TIMESTAMP)" }

func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
