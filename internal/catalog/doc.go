// Package catalog owns the metric catalog (metrics-jobs/catalog.yaml): the single
// source of truth for which metrics exist and how each is computed. It loads
// and validates the YAML strictly, and it is the only compiler of the catalog:
//
//   - to Go, for the router: a predicate and a projection per metric ([Compile]);
//   - to Spark SQL, for the metric jobs: a job spec per metric ([SparkSpec]),
//     down to the documents they write (see Documents);
//   - to the list of Kafka topics and consumer groups ([Topics]).
//
// # Format
//
// The file has `defaults` (applied to every metric that does not set the key)
// and `metrics`, a list. Each metric has a name ([a-z][a-z0-9_]*), a
// description, a structured filter (a list of conditions, all of which must
// hold: field, op, value — no expression language), the projected fields, the
// group-by fields, window sizes, aggregations, allowed lateness, freshness SLA
// and the partition count of its topic. Unknown keys are errors; every error
// names the metric, the key and the line.
//
// # Semantics
//
// A metric document covers one window of one group (by default one tenant)
// and holds each aggregation's value plus `samples`, the number of records in
// the window that passed the filter. Percentiles and distinct counts are
// approximate (see [Aggregation]); everything else is exact.
//
// # Documents
//
// This package owns the documents the metric jobs write (document.go): a
// metric document per window and group in the monthly index
// [IndexName] behind [Alias], with _id [DocID]; its fields
// ([Metric.DocumentFields]): metric, the group-by fields, window {start, end,
// size}, samples, the outputs, computed_at. And, in [LateIndex], a document
// per group and micro-batch for the records that reached no window: reason
// late (per window, [Metric.LateDocumentFields]) or out_of_range
// ([Metric.OutOfRangeDocumentFields]). The job spec carries the Spark SQL
// that builds every one of them (_id, _index and _source): [JobSpec].WindowsSQL,
// RowSQL and DocumentSQL, and [LateSpec]. The driver
// evaluates it and assembles nothing itself, except the baseline objects
// below, which need a history read. internal/essetup maps the same fields.
//
// The spec also carries [JobSpec].RetryableStatuses, internal/retry's
// classification of HTTP statuses, so that the driver retries exactly what
// the Go sinks retry.
//
// # Baselines
//
// A metric may list `baselines`: an output compared with the same output of
// earlier windows of the same group, read back from Elasticsearch by the job
// (issue 17). One baseline per output; each applies to one window size.
//
//	baselines:
//	  - output: requests            # an output of the metric (duration_ms_p95 for a percentile)
//	    window: 1h                  # required when the metric has several windows
//	    lookback: {same_window_of_day: {days: 7}}   # or {last_windows: 24}
//	    statistic: median_mad       # or mean_stddev
//	    anomaly: {z: 3.0, min_samples: 5}
//
// Look-back windows of a window starting at S: S − k·24h for
// same_window_of_day (days 1-28), S − k·size for last_windows (1-1000
// windows), k = 1..N ([Baseline.Starts]). mean_stddev: expected = mean,
// spread = sample standard deviation (divisor n−1); median_mad: expected =
// median, spread = 1.4826 × MAD ([MADScale]). score = (value − expected) /
// spread; anomalous when |score| ≥ z and at least min_samples (2..N) past
// windows exist; with fewer, no score and never anomalous. Each document of
// that window size gets `baseline.<output>`: expected, spread, lower and upper
// (expected ∓ z·spread), score, anomaly, samples (past windows found; 0 when
// there is no history — never a fake zero value). The full rules, including a
// flat history (spread 0), are in metrics-jobs/hourglass_jobs/baseline.py.
// The job spec carries them as [BaselineSpec]. An anomaly is a property of
// the customer's traffic, not an SLA breach.
package catalog
