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
// freshness SLA. A dashboard holds the freshness panel and every metric's
// chart. A metric added to the catalog gets its data view, chart and freshness
// row with no hand editing.
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
// # Tenants
//
// Options.Index chooses the index of each data view and Vega query, and
// Options.IDPrefix the object ids, so `hourglass tenants provision` renders the
// same objects over a tenant's filtered aliases with ids of its own (Kibana 8
// wants ids of shareable types unique across spaces).
package kibana
