package catalog

import (
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/retry"
)

// topKeys returns the keys of the JSON object built by source, a
// to_json(named_struct(k1, v1, k2, v2, ...), options) expression, in order.
func topKeys(t *testing.T, source string) []string {
	t.Helper()
	const open = "to_json(named_struct("
	require.True(t, strings.HasPrefix(source, open), source)
	var args []string
	depth, from := 0, len(open)
	for i := from; i < len(source) && depth >= 0; i++ {
		switch c := source[i]; c {
		case '\'', '"', '`': // skip a literal or a quoted identifier
			end := strings.IndexByte(source[i+1:], c)
			require.GreaterOrEqual(t, end, 0, "unterminated %c in %s", c, source)
			i += end + 1
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				args = append(args, strings.TrimSpace(source[from:i]))
			}
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(source[from:i]))
				from = i + 1
			}
		}
	}
	require.Zero(t, len(args)%2, "named_struct takes key, value pairs: %q", args)
	var keys []string
	for i := 0; i < len(args); i += 2 {
		k, ok := strings.CutPrefix(args[i], "'")
		require.True(t, ok, "key %q", args[i])
		keys = append(keys, strings.TrimSuffix(k, "'"))
	}
	return keys
}

func TestMetricDocumentSQL(t *testing.T) {
	for _, file := range []string{shipped, "testdata/full.good.yaml"} {
		c, err := Load(file)
		require.NoError(t, err)
		for _, m := range c.Metrics {
			s := SparkSpec(m)
			want := append(append(append([]string{"metric"}, m.GroupBy...), "window", "samples"), m.Outputs()...)
			want = append(want, "computed_at")
			require.Equal(t, want, m.DocumentFields(), m.Name)
			require.Equal(t, want, s.DocumentFields, m.Name)

			require.Len(t, s.DocumentSQL, 3)
			require.Equal(t, s.IDSQL+" AS _id", s.DocumentSQL[0])
			require.Equal(t, s.IndexSQL+" AS _index", s.DocumentSQL[1])
			src, ok := strings.CutSuffix(s.DocumentSQL[2], " AS _source")
			require.True(t, ok)
			require.Equal(t, s.DocumentFields, topKeys(t, src))
			require.Contains(t, src, "map('ignoreNullFields', 'false')", "nulls are written")

			require.Equal(t, "window", s.RowSQL[0])
			require.Equal(t, "window_size", s.RowSQL[len(s.RowSQL)-1])
			require.Subset(t, s.RowSQL, s.Outputs)
			for _, w := range s.Windows {
				require.Contains(t, s.WindowsSQL, "named_struct('window_size', '"+w.Name+"', ", "a row per window size")
			}
		}
	}
}

func TestLateDocumentSQL(t *testing.T) {
	c, err := Load("testdata/full.good.yaml")
	require.NoError(t, err)
	m := c.Metrics[0] // slow_api: group_by [tenant, host], one window (1h)
	s := SparkSpec(m)
	l := s.LateDocuments
	require.Equal(t, "hourglass-late-slow_api", s.LateIndex)
	require.True(t, strings.HasPrefix(s.LateIndex, strings.TrimSuffix(LateIndexPattern, "*")))
	require.Equal(t, []string{BatchIDColumn, EpochColumn, WatermarkColumn, RecordsColumn},
		[]string{l.BatchIDColumn, l.EpochColumn, l.WatermarkColumn, l.RecordsColumn})
	require.Equal(t, "NOT `_out_of_range`", s.AcceptedSQL)
	require.Equal(t, OutOfRangeColumn, s.OutOfRangeColumn)

	for _, d := range []struct {
		spec   DropSpec
		reason string
		fields []string
	}{
		{l.Late, "late", []string{"metric", "tenant", "host", "window", "reason", "late_records", "watermark", "batch_id", "computed_at"}},
		{l.OutOfRange, "out_of_range", []string{"metric", "tenant", "host", "reason", "rejected_records", "min_event_time",
			"max_event_time", "max_kafka_timestamp", "max_future_seconds", "batch_id", "computed_at"}},
	} {
		require.Equal(t, d.reason, d.spec.Reason)
		require.Equal(t, d.fields, d.spec.DocumentFields)
		require.Len(t, d.spec.DocumentSQL, 4)
		require.True(t, strings.HasPrefix(d.spec.DocumentSQL[0], "sha2(concat_ws('|', 'slow_api', "), d.spec.DocumentSQL[0])
		require.True(t, strings.HasSuffix(d.spec.DocumentSQL[0], "`_epoch`, CAST(`_batch_id` AS STRING)), 256) AS _id"),
			"the epoch and the batch id make a replay overwrite: %s", d.spec.DocumentSQL[0])
		require.Equal(t, "'hourglass-late-slow_api' AS _index", d.spec.DocumentSQL[1])
		src, ok := strings.CutSuffix(d.spec.DocumentSQL[2], " AS _source")
		require.True(t, ok)
		require.Equal(t, d.fields, topKeys(t, src))
		require.Contains(t, src, "'reason', '"+d.reason+"'")
		require.True(t, strings.HasSuffix(d.spec.DocumentSQL[3], " AS "+l.RecordsColumn), d.spec.DocumentSQL[3])
		require.Subset(t, d.spec.GroupBy, m.GroupBy)
	}
	require.Contains(t, l.OutOfRange.DocumentSQL[2], "'max_future_seconds', 300,")
	require.Contains(t, l.Late.RowsSQL[len(l.Late.RowsSQL)-1], "'window_size', '1h'")
	require.Equal(t, "NOT `_out_of_range` AND `window_end_us` <= CAST(`_watermark_ms` AS BIGINT) * 1000", l.Late.WhereSQL)
	// The candidate tests keep every row a document counts (a window ends
	// after each of its rows); metrics-jobs/tests test_late_pass_reads_the_batch_once
	// compares the documents with and without them in Spark.
	require.Equal(t, "NOT `_out_of_range` AND unix_micros(event_time) < CAST(`_watermark_ms` AS BIGINT) * 1000", l.Late.CandidateSQL)
	require.Equal(t, l.OutOfRange.WhereSQL, l.OutOfRange.CandidateSQL)
}

func TestSpecCarriesTheRetryableStatuses(t *testing.T) {
	c, err := Load(shipped)
	require.NoError(t, err)
	s := SparkSpec(c.Metrics[0])
	var want []StatusRange
	for _, r := range retry.RetryableStatuses() {
		want = append(want, StatusRange{From: r.From, To: r.To})
	}
	require.Equal(t, want, s.RetryableStatuses)
}

// HeadEventTimeSQL reads the event time from the head of a metric topic
// value: the router writes the projection's fields in order, the timestamp
// first.
func TestProjectionBeginsWithTheTimestamp(t *testing.T) {
	c, err := Load("testdata/full.good.yaml")
	require.NoError(t, err)
	for _, m := range c.Metrics {
		require.Equal(t, record.FieldTimestamp, m.Projection()[0], m.Name)
		require.Contains(t, SparkSpec(m).HeadEventTimeSQL, "startswith(`"+ValueColumn+"`, '"+record.ProjectionHead+"')")
	}
}
