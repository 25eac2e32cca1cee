package logpeek

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec // by endpoint, code
	duration *prometheus.HistogramVec
	scanned  prometheus.Counter
	records  prometheus.Counter
	inflight prometheus.Gauge
	cache    *cacheMetrics
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
		cache: &cacheMetrics{
			hits: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "hourglass_logpeek_page_cache_hits_total", Help: "Hours of /v1/logs pages served from the page cache."}),
			misses: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "hourglass_logpeek_page_cache_misses_total", Help: "Hours of /v1/logs pages read from the archive, the page cache on."}),
			evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "hourglass_logpeek_page_cache_evictions_total",
				Help: "Page cache entries dropped, by reason: budget (to make room), tenant_share (a tenant over half the budget), ttl (unused for 10m), stale (the hour's part files changed)."}, []string{"reason"}),
			bytes: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "hourglass_logpeek_page_cache_bytes", Help: "Bytes held by the page cache (records and their bookkeeping)."}),
			entries: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "hourglass_logpeek_page_cache_entries", Help: "Entries in the page cache."}),
		},
	}
	reg.MustRegister(m.requests, m.duration, m.scanned, m.records, m.inflight,
		m.cache.hits, m.cache.misses, m.cache.evictions, m.cache.bytes, m.cache.entries)
	return m
}
