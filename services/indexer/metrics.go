package indexer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	in       prometheus.Counter
	indexed  *prometheus.CounterVec // by result: created, duplicate
	skipped  prometheus.Counter
	rejected prometheus.Counter
	bulk     prometheus.Histogram
	retries  prometheus.Counter
	commits  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_indexer_records_in_total", Help: "Raw records consumed."}),
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_indexer_documents_total",
			Help: "Documents acknowledged by the cluster, by result: created, or duplicate (already indexed: a replay)."}, []string{"result"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_indexer_records_invalid_total", Help: "Invalid records skipped (the router DLQs them)."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_indexer_documents_rejected_total", Help: "Documents the cluster refused for good, sent to the DLQ."}),
		bulk: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_indexer_bulk_seconds", Help: "Time to have one batch acknowledged, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 16)}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_indexer_bulk_retries_total", Help: "Bulk requests (or parts) that failed and were retried."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_indexer_commits_total", Help: "Offset commits, by result (ok, error)."}, []string{"result"}),
	}
	reg.MustRegister(m.in, m.indexed, m.skipped, m.rejected, m.bulk, m.retries, m.commits)
	return m
}
