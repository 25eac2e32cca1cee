package query

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests        *prometheus.CounterVec // by endpoint, code
	duration        *prometheus.HistogramVec
	submitted       prometheus.Counter
	rejected        *prometheus.CounterVec // by scope
	finished        *prometheus.CounterVec // by state
	queued          prometheus.Gauge
	running         prometheus.Gauge
	runSeconds      prometheus.Histogram
	syncWaiting     prometheus.Gauge
	storeErrors     prometheus.Counter
	eventsPublished prometheus.Counter
	eventsDropped   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hourglass_query_requests_total",
			Help: "API requests, by endpoint and outcome code (ok, or the error code)."}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hourglass_query_request_seconds",
			Help: "API request duration, by endpoint.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"endpoint"}),
		submitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "hourglass_query_jobs_submitted_total", Help: "Jobs accepted."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hourglass_query_jobs_rejected_total",
			Help: "Jobs refused for a limit, by scope (tenant, service)."}, []string{"scope"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hourglass_query_jobs_finished_total",
			Help: "Jobs that reached a final state, by state."}, []string{"state"}),
		queued:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "hourglass_query_jobs_queued", Help: "Jobs waiting to run."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hourglass_query_jobs_running", Help: "Jobs running on Spark."}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hourglass_query_job_run_seconds",
			Help: "Time jobs spent on the engine.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 18)}),
		syncWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hourglass_query_sync_waiting",
			Help: "Synchronous requests waiting for their job."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hourglass_query_store_errors_total",
			Help: "Job records or results that could not be written."}),
		eventsPublished: prometheus.NewCounter(prometheus.CounterOpts{Name: "hourglass_query_events_published_total",
			Help: "Job events published to Kafka."}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "hourglass_query_events_dropped_total",
			Help: "Job events not published to Kafka (queue full or Kafka failing)."}),
	}
	reg.MustRegister(m.requests, m.duration, m.submitted, m.rejected, m.finished, m.queued, m.running,
		m.runSeconds, m.syncWaiting, m.storeErrors, m.eventsPublished, m.eventsDropped)
	return m
}
