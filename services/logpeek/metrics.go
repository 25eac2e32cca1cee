package logpeek

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec // by endpoint, code
	duration *prometheus.HistogramVec
	scanned  prometheus.Counter
	records  prometheus.Counter
	inflight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_logpeek_requests_total",
			Help: "API requests, by endpoint and outcome code (ok, or the error code)."}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hourglass_logpeek_request_seconds", Help: "API request duration, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"endpoint"}),
		scanned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_logpeek_scanned_bytes_total", Help: "Compressed archive bytes read."}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_logpeek_records_returned_total", Help: "Records streamed to clients."}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_logpeek_requests_in_flight", Help: "Requests being served."}),
	}
	reg.MustRegister(m.requests, m.duration, m.scanned, m.records, m.inflight)
	return m
}
