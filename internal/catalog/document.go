package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// This file owns the documents the metric jobs write (DESIGN.md, "Metric
// documents"): their index, _id, field names and the Spark SQL that builds
// them. The driver (metrics-jobs/hourglass_jobs) evaluates that SQL from the
// job spec and spells none of it; internal/essetup maps the same field names.

// Fields of every metric document besides the group-by fields and the
// outputs, in document order: metric, <group-by>, window, samples,
// <outputs>, computed_at ([Metric.DocumentFields]).
const (
	DocMetric     = "metric"
	DocWindow     = "window" // an object: WindowStart, WindowEnd (RFC 3339, UTC, seconds), WindowSize (1m, 1h)
	DocSamples    = "samples"
	DocComputedAt = "computed_at" // RFC 3339, UTC, milliseconds
)

// Keys of a document's window object (DocWindow).
const (
	WindowStart = "start"
	WindowEnd   = "end"
	WindowSize  = "size"
)

// Fields of the late-index documents ([LateIndex]) besides metric, the
// group-by fields, window (late records only) and computed_at (seconds).
const (
	DocReason            = "reason"
	DocLateRecords       = "late_records"     // reason late: records of the group and window behind the watermark
	DocWatermark         = "watermark"        // reason late: the watermark they were behind
	DocRejectedRecords   = "rejected_records" // reason out_of_range: records of the group too far in the future
	DocMinEventTime      = "min_event_time"   // reason out_of_range: their event times and Kafka timestamps, ms
	DocMaxEventTime      = "max_event_time"
	DocMaxKafkaTimestamp = "max_kafka_timestamp"
	DocMaxFutureSeconds  = "max_future_seconds" // reason out_of_range: the bound they broke
	DocBatchID           = "batch_id"           // the late query's micro-batch
)

// Reasons of the late-index documents: records behind the watermark, and
// records whose event time is too far after their Kafka timestamp (the
// router's record code for the same rule).
const (
	ReasonLate       = "late"
	ReasonOutOfRange = string(record.CodeOutOfRange)
)

// Columns the driver adds to the rows it evaluates the spec's SQL over.
// Record fields never start with an underscore, so none can collide.
const (
	// KafkaTimestampColumn holds the Kafka record's timestamp beside the
	// parsed fields.
	KafkaTimestampColumn = "_kafka_timestamp"
	// OutOfRangeColumn holds the value of the spec's out_of_range_sql (false
	// when null).
	OutOfRangeColumn = "_out_of_range"
	// ValueColumn holds the Kafka record's value as a string in the late
	// query, which reads the event time from its head (HeadEventTimeSQL).
	ValueColumn = "_value"
	// The late query's micro-batch id, the epoch of its state (so that the
	// _ids of a replayed batch repeat and those of a new state do not) and
	// the watermark the batch is classified with (ms since the Unix epoch),
	// added as literals to each micro-batch of the late query.
	BatchIDColumn   = "_batch_id"
	EpochColumn     = "_epoch"
	WatermarkColumn = "_watermark_ms"
	// RecordsColumn is selected beside a late-index document: the records it
	// counts (for the driver's log).
	RecordsColumn = "_records"
)

// metricsPrefix starts every metric's alias and monthly indices.
const metricsPrefix = "hourglass-metrics-"

// MetricIndexPattern matches every metric's alias and monthly indices.
const MetricIndexPattern = metricsPrefix + "*"

// Alias is the Elasticsearch alias of a metric's monthly indices.
func Alias(metric string) string { return metricsPrefix + metric }

// LatePrefix starts the name of every metric's late-record index.
const LatePrefix = "hourglass-late-"

// LateIndexPattern matches every metric's late-record index.
const LateIndexPattern = LatePrefix + "*"

// LateIndex is the index in which a metric's job counts the records that
// reached no window (late beyond the watermark, out of range), by reason.
func LateIndex(metric string) string { return LatePrefix + metric }

// IndexName is the monthly index holding windows that start at start.
func IndexName(metric string, start time.Time) string {
	return Alias(metric) + "-" + start.UTC().Format("2006.01")
}

// DocID is the document _id of one window of one group: the same inputs give
// the same id, so replays and late updates overwrite. IDSQL computes the same
// value in Spark: hex SHA-256 of metric|size|start(RFC 3339, UTC, seconds)|group values.
func DocID(metric string, window time.Duration, start time.Time, group ...string) string {
	parts := append([]string{metric, Duration{window}.String(), start.UTC().Format("2006-01-02T15:04:05Z")}, group...)
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(sum[:])
}

// DocumentFields lists the top-level fields of the metric's documents as the
// job's SQL writes them, in order. A metric with baselines also gets
// [BaselineField] on the documents of the baselines' window size (written by
// the driver after the SQL).
func (m Metric) DocumentFields() []string {
	out := []string{DocMetric}
	out = append(out, m.GroupBy...)
	out = append(out, DocWindow, DocSamples)
	out = append(out, m.Outputs()...)
	return append(out, DocComputedAt)
}

// LateDocumentFields lists the fields of a late-index document of reason
// ReasonLate, in order.
func (m Metric) LateDocumentFields() []string {
	out := append([]string{DocMetric}, m.GroupBy...)
	return append(out, DocWindow, DocReason, DocLateRecords, DocWatermark, DocBatchID, DocComputedAt)
}

// OutOfRangeDocumentFields lists the fields of a late-index document of
// reason ReasonOutOfRange, in order.
func (m Metric) OutOfRangeDocumentFields() []string {
	out := append([]string{DocMetric}, m.GroupBy...)
	return append(out, DocReason, DocRejectedRecords, DocMinEventTime, DocMaxEventTime,
		DocMaxKafkaTimestamp, DocMaxFutureSeconds, DocBatchID, DocComputedAt)
}

// Spark date_format patterns of the documents' timestamps (UTC sessions).
const (
	sqlSeconds = `"yyyy-MM-dd'T'HH:mm:ss'Z'"`
	sqlMillis  = `"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"`
)

// jsonSQL renders a JSON object with the given keys and value expressions,
// in order, nulls kept.
func jsonSQL(kvs ...[2]string) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = sqlString(kv[0]) + ", " + kv[1]
	}
	return "to_json(named_struct(" + strings.Join(parts, ", ") + "), map('ignoreNullFields', 'false'))"
}

// idSQL is the hex SHA-256 of the parts joined by "|"; a null group value
// counts as "" (as DocID's callers pass it).
func idSQL(parts []string, groupBy []string, after ...string) string {
	parts = append([]string(nil), parts...)
	for _, g := range groupBy {
		parts = append(parts, "coalesce(CAST("+quote(g)+" AS STRING), '')")
	}
	parts = append(parts, after...)
	return "sha2(concat_ws('|', " + strings.Join(parts, ", ") + "), 256)"
}

func groupFields(groupBy []string) [][2]string {
	out := make([][2]string, len(groupBy))
	for i, g := range groupBy {
		out[i] = [2]string{g, quote(g)}
	}
	return out
}

// windowStartUS is the start (µs since the Unix epoch) of the tumbling window
// of the given length holding event_time, aligned to the epoch as Spark's
// window() aligns it (pmod: the window of an instant before 1970 starts
// before it too).
func windowStartUS(seconds int64) string {
	return fmt.Sprintf("(unix_micros(event_time) - pmod(unix_micros(event_time), %d))", seconds*1_000_000)
}

// metricDocument fills the document SQL of the spec: the windows of a row,
// the row select, and the _id, _index and _source of each row.
func metricDocument(s *JobSpec, m Metric) {
	s.IndexSQL = fmt.Sprintf("concat('%s-', date_format(window.start, 'yyyy.MM'))", Alias(m.Name))
	s.IDSQL = idSQL([]string{sqlString(m.Name), "window_size", "date_format(window.start, " + sqlSeconds + ")"}, m.GroupBy)
	sizes := make([]string, len(s.Windows))
	for i, w := range s.Windows {
		start := windowStartUS(w.Seconds)
		sizes[i] = fmt.Sprintf("named_struct('window_size', %s, 'window', named_struct('start', timestamp_micros(%s), 'end', timestamp_micros(%s + %d)))",
			sqlString(w.Name), start, start, w.Seconds*1_000_000)
	}
	s.WindowsSQL = "inline(array(" + strings.Join(sizes, ", ") + "))"
	s.RowSQL = append([]string{"window"}, quotes(m.GroupBy)...)
	s.RowSQL = append(s.RowSQL, DocSamples)
	s.RowSQL = append(s.RowSQL, s.Outputs...)
	s.RowSQL = append(s.RowSQL, "window_size")
	fields := [][2]string{{DocMetric, sqlString(m.Name)}}
	fields = append(fields, groupFields(m.GroupBy)...)
	fields = append(fields,
		[2]string{DocWindow, "named_struct(" + sqlString(WindowStart) + ", date_format(window.start, " + sqlSeconds + "), " +
			sqlString(WindowEnd) + ", date_format(window.end, " + sqlSeconds + "), " + sqlString(WindowSize) + ", window_size)"},
		[2]string{DocSamples, DocSamples})
	for _, o := range m.Outputs() {
		fields = append(fields, [2]string{o, quote(o)})
	}
	fields = append(fields, [2]string{DocComputedAt, "date_format(current_timestamp(), " + sqlMillis + ")"})
	s.DocumentSQL = []string{s.IDSQL + " AS _id", s.IndexSQL + " AS _index", jsonSQL(fields...) + " AS _source"}
	s.DocumentFields = m.DocumentFields()
}

// lateDocuments compiles the late-index documents of a metric.
func lateDocuments(m Metric, windows []WindowRef, maxFutureSeconds int64) LateSpec {
	batch, epoch, wm := quote(BatchIDColumn), quote(EpochColumn), quote(WatermarkColumn)
	batchID := "CAST(" + batch + " AS BIGINT)"
	index := sqlString(LateIndex(m.Name))
	computedAt := [2]string{DocComputedAt, "date_format(current_timestamp(), " + sqlSeconds + ")"}
	params := []string{BatchIDColumn, EpochColumn}

	// Late: each accepted row once per window size, with the start and end
	// (µs) of its window, as Spark's window() aligns them to the epoch; the
	// window is late when it ends at or before the watermark.
	sizes := make([]string, len(windows))
	for i, w := range windows {
		start := windowStartUS(w.Seconds)
		sizes[i] = fmt.Sprintf("named_struct('window_size', %s, 'window_start_us', %s, 'window_end_us', (%s + %d))",
			sqlString(w.Name), start, start, w.Seconds*1_000_000)
	}
	late := DropSpec{
		Reason: ReasonLate,
		// A window ends after every row in it: a row at or after the
		// watermark cannot be in a late window.
		CandidateSQL: "NOT " + quote(OutOfRangeColumn) + " AND unix_micros(event_time) < CAST(" + wm + " AS BIGINT) * 1000",
		RowsSQL:      append(quotes(m.GroupBy), batch, epoch, wm, quote(OutOfRangeColumn), "inline(array("+strings.Join(sizes, ", ")+"))"),
		WhereSQL:     "NOT " + quote(OutOfRangeColumn) + " AND `window_end_us` <= CAST(" + wm + " AS BIGINT) * 1000",
		GroupBy:      concat([]string{"window_size", "window_start_us", "window_end_us"}, m.GroupBy, params, []string{WatermarkColumn}),
		Aggregations: []string{"count(1) AS " + quote(DocLateRecords)},
	}
	start := "date_format(timestamp_micros(`window_start_us`), " + sqlSeconds + ")"
	lateFields := [][2]string{{DocMetric, sqlString(m.Name)}}
	lateFields = append(lateFields, groupFields(m.GroupBy)...)
	lateFields = append(lateFields,
		[2]string{DocWindow, "named_struct(" + sqlString(WindowStart) + ", " + start + ", " + sqlString(WindowEnd) +
			", date_format(timestamp_micros(`window_end_us`), " + sqlSeconds + "), " + sqlString(WindowSize) + ", `window_size`)"},
		[2]string{DocReason, sqlString(ReasonLate)},
		[2]string{DocLateRecords, quote(DocLateRecords)},
		[2]string{DocWatermark, "date_format(timestamp_millis(CAST(" + wm + " AS BIGINT)), " + sqlSeconds + ")"},
		[2]string{DocBatchID, batchID},
		computedAt)
	late.DocumentSQL = []string{
		idSQL([]string{sqlString(m.Name), "`window_size`", start}, m.GroupBy, epoch, "CAST("+batch+" AS STRING)") + " AS _id",
		index + " AS _index",
		jsonSQL(lateFields...) + " AS _source",
		quote(DocLateRecords) + " AS " + RecordsColumn,
	}
	late.DocumentFields = m.LateDocumentFields()

	// Out of range: the rows flagged by out_of_range_sql, per group.
	kts := quote(KafkaTimestampColumn)
	oor := DropSpec{
		Reason:       ReasonOutOfRange,
		CandidateSQL: quote(OutOfRangeColumn),
		RowsSQL:      append(quotes(m.GroupBy), "event_time", kts, quote(OutOfRangeColumn), batch, epoch),
		WhereSQL:     quote(OutOfRangeColumn),
		GroupBy:      concat(m.GroupBy, params),
		Aggregations: []string{
			"count(1) AS " + quote(DocRejectedRecords),
			"date_format(min(event_time), " + sqlMillis + ") AS " + quote(DocMinEventTime),
			"date_format(max(event_time), " + sqlMillis + ") AS " + quote(DocMaxEventTime),
			"date_format(max(" + kts + "), " + sqlMillis + ") AS " + quote(DocMaxKafkaTimestamp),
		},
	}
	oorFields := [][2]string{{DocMetric, sqlString(m.Name)}}
	oorFields = append(oorFields, groupFields(m.GroupBy)...)
	oorFields = append(oorFields,
		[2]string{DocReason, sqlString(ReasonOutOfRange)},
		[2]string{DocRejectedRecords, quote(DocRejectedRecords)},
		[2]string{DocMinEventTime, quote(DocMinEventTime)},
		[2]string{DocMaxEventTime, quote(DocMaxEventTime)},
		[2]string{DocMaxKafkaTimestamp, quote(DocMaxKafkaTimestamp)},
		[2]string{DocMaxFutureSeconds, strconv.FormatInt(maxFutureSeconds, 10)},
		[2]string{DocBatchID, batchID},
		computedAt)
	oor.DocumentSQL = []string{
		idSQL([]string{sqlString(m.Name), sqlString(ReasonOutOfRange)}, m.GroupBy, epoch, "CAST("+batch+" AS STRING)") + " AS _id",
		index + " AS _index",
		jsonSQL(oorFields...) + " AS _source",
		quote(DocRejectedRecords) + " AS " + RecordsColumn,
	}
	oor.DocumentFields = m.OutOfRangeDocumentFields()

	return LateSpec{BatchIDColumn: BatchIDColumn, EpochColumn: EpochColumn, WatermarkColumn: WatermarkColumn,
		RecordsColumn: RecordsColumn, Late: late, OutOfRange: oor}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func quotes(idents []string) []string {
	out := make([]string, len(idents))
	for i, id := range idents {
		out[i] = quote(id)
	}
	return out
}
