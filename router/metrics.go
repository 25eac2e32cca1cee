package router

import "github.com/prometheus/client_golang/prometheus"

// metrics of one router.
type metrics struct {
	in            prometheus.Counter
	out           *prometheus.CounterVec // by metric
	dlq           *prometheus.CounterVec // by reason
	filtered      *prometheus.CounterVec // by metric: valid records its filter left out
	unknownFields prometheus.Counter
	produce       prometheus.Histogram
	batch         prometheus.Histogram
	retries       prometheus.Counter
	reloads       *prometheus.CounterVec // by result
	routes        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_router_records_in_total", Help: "Raw records consumed."}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_router_records_out_total", Help: "Projected records produced, by metric."}, []string{"metric"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_router_dlq_records_total", Help: "Records sent to the DLQ, by reason code."}, []string{"reason"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_router_records_filtered_total",
			Help: "Valid records a metric's filter left out, by metric: dropped on purpose, not an error."}, []string{"metric"}),
		unknownFields: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_router_unknown_fields_total", Help: "Unknown record keys dropped."}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_router_produce_seconds", Help: "Time to have one batch acknowledged by Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_router_batch_records", Help: "Raw records per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_router_produce_retries_total", Help: "Batch produce attempts that failed and were retried."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_router_catalog_reloads_total", Help: "Catalog reloads, by result (ok, error)."}, []string{"result"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_router_metrics", Help: "Metrics the router currently routes to."}),
	}
	reg.MustRegister(m.in, m.out, m.dlq, m.filtered, m.unknownFields, m.produce, m.batch, m.retries, m.reloads, m.routes)
	return m
}
