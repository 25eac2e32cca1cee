package jobs

import "github.com/prometheus/client_golang/prometheus"

// metrics of the supervisor, per driver (one Spark driver, named by --driver or after its metric). Served by
// `hourglass jobs supervise --listen-addr`; rules.yml's
// HourglassMetricJobDown and HourglassMetricJobRestarting read them.
type metrics struct {
	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hourglass_jobs_driver_up",
			Help: "1 while the Spark driver process runs, 0 while it is starting again or backing off after an exit."}, []string{"driver"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_jobs_driver_restarts_total",
			Help: "Times the Spark driver exited and was restarted by the supervisor."}, []string{"driver"}),
	}
	reg.MustRegister(m.up, m.restarts)
	return m
}

// started, exited and gone record a driver's life; nil-safe (a supervisor
// without a registerer has no metrics).
func (m *metrics) started(job string) {
	if m != nil {
		m.up.WithLabelValues(job).Set(1)
		m.restarts.WithLabelValues(job)
	}
}

func (m *metrics) exited(job string) {
	if m != nil {
		m.up.WithLabelValues(job).Set(0)
		m.restarts.WithLabelValues(job).Inc()
	}
}

// gone removes the job's series: it is no longer supervised here.
func (m *metrics) gone(job string) {
	if m != nil {
		m.up.DeleteLabelValues(job)
		m.restarts.DeleteLabelValues(job)
	}
}
