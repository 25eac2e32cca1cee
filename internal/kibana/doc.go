// Package kibana compiles the metric catalog into Kibana 8 saved objects and
// checks them statically against the Elasticsearch index templates.
//
// # What is rendered
//
// For every catalog metric: a data view (type index-pattern) on the metric's
// alias with time field window.start, and one line chart over window.start
// with one series per output field of the metric. A freshness panel (Vega)
// shows, per metric, the age of the newest complete hour: now minus the end of
// the newest 1h window whose end has passed, red when over the metric's
// freshness SLA. For every baseline of the catalog (issue 17), a band panel
// (Vega) follows its metric's chart: see "Baselines" below. A dashboard holds
// the freshness panel and every metric's chart. A metric added to the catalog
// gets its data view, chart and freshness row, and a baseline its band panel,
// with no hand editing.
//
// # Why legacy aggregation-based visualizations and Vega, not Lens
//
// Kibana cannot run on the development machines, so every object must be
// checkable without it. An aggregation-based visualization names each field in
// one place (visState.aggs[].params.field) next to its aggregation type, and
// its data view and filters by saved-object references, so the validator can
// check every field against the index template with the type that aggregation
// accepts and resolve every reference. Lens keeps the same information in a
// larger, version-dependent state (datasource layers, column maps, formula
// ASTs) that Kibana migrates between minor versions; a checker for it would
// re-implement much of Lens. The freshness panel needs "now minus the newest
// window end", which neither Lens nor the aggregation-based charts express;
// the Vega spec's Elasticsearch queries are plain query DSL, checked the same
// way.
//
// # Aggregation per output
//
// Charts use the smallest window size of the metric (1m by default), filtered
// by a structured phrase filter on window.size. The value of a bucket is, by
// the output's catalog function: count, ratio, avg, percentiles → avg over the
// bucket's windows (per-window rate; percentiles cannot be merged exactly, the
// average of per-minute percentiles is the usual compromise); sum → sum;
// min → min; max → max; approx_distinct → max (distinct counts cannot be added).
//
// # Baselines
//
// A baselined output (catalog.Baseline) gets a Vega panel over the documents
// of the baseline's window size that carry its baseline object
// (catalog.BaselineField.<output>, written by the metric jobs): per group, the
// output's value (a line through each window's middle), the expected band
// from lower to upper (a grey step per window; none where fewer than
// min_samples past windows existed) with the expected value dashed, and each
// anomalous window (anomaly true) shaded over its span with an orange marker
// on its value. A window whose end plus the metric's allowed lateness has
// not passed is still rewritten as records arrive (the jobs write in update
// mode), so its marker is hollow: provisional. Orange, not the freshness
// panel's red: an anomaly is the tenant's traffic, not an SLA breach, and the
// panel's title and description say so.
//
// The query reads hits, not aggregations: the _source fields named by
// catalog (window start and end, the group-by fields, the output, and
// expected, lower, upper, score, anomaly, samples of the baseline object;
// spread is not shown), at most 10000 documents (the default
// index.max_result_window), newest first; the dashboard's time range
// (%timefilter% on window.start) and filters (%dashboard_context-*%) apply.
// One tenant's 1h windows over 7 days are 168 documents; a range holding more
// than 10000 windows shows the newest 10000.
//
// Validate checks such a panel like any other Vega query (index, term,
// range, exists and sort fields, size) and, in addition, every document
// field the spec reads from the hits (project fields "_source.<field>" and
// expressions datum._source.<field>): it must be a field (not an object) of
// the queried index's mapping and be returned by the query's _source. A panel
// reading a baseline the catalog does not declare, or a leaf the baseline
// object does not have, fails.
//
// # Tenants
//
// Options.Index chooses the index of each data view and Vega query, and
// Options.IDPrefix the object ids, so `hourglass tenants provision` renders the
// same objects over a tenant's filtered aliases with ids of its own (Kibana 8
// wants ids of shareable types unique across spaces).
package kibana
