// Package catalog owns the metric catalog (metrics-jobs/catalog.yaml): the single
// source of truth for which metrics exist and how each is computed. It loads
// and validates the YAML strictly, and it is the only compiler of the catalog:
//
//   - to Go, for the router: a predicate and a projection per metric ([Compile]);
//   - to Spark SQL, for the metric jobs: a job spec per metric ([SparkSpec]);
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
package catalog
