package ingress

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests      *prometheus.CounterVec // by status code and reason code
	accepted      *prometheus.CounterVec // by tenant
	rejected      *prometheus.CounterVec // by reason
	bytes         prometheus.Counter
	unknownFields prometheus.Counter
	sink          *prometheus.HistogramVec // by outcome
	request       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_ingress_requests_total", Help: "Intake requests by HTTP status and reason code."}, []string{"status", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_ingress_records_accepted_total", Help: "Records accepted and durable, by tenant."}, []string{"tenant"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_ingress_records_rejected_total", Help: "Records rejected, by reason code."}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_ingress_received_bytes_total", Help: "Request body bytes as received (compressed)."}),
		unknownFields: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_ingress_unknown_fields_total", Help: "Unknown record keys dropped."}),
		sink: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hourglass_ingress_sink_seconds", Help: "Time for the sink to confirm a request's records, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"outcome"}),
		request: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_ingress_request_seconds", Help: "Intake request duration.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	reg.MustRegister(m.requests, m.accepted, m.rejected, m.bytes, m.unknownFields, m.sink, m.request)
	return m
}
