package lagmon

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// metrics of the monitor itself; the lag, freshness and status series come
// from snapshotCollector.
type metrics struct {
	signals     *signalCollector       // input and dropped records (dropped.go)
	polls       *prometheus.CounterVec // by result
	pollSeconds prometheus.Histogram
	tsFetches   *prometheus.CounterVec // by result: cached, fetched, error
	reloads     *prometheus.CounterVec // by result
	alerts      *prometheus.CounterVec // by receiver kind and result
	// offsetReadErrors: reads whose values are unknown this poll, by kind.
	offsetReadErrors *prometheus.CounterVec
	// groupDecodeErrors: members whose consumer-protocol subscription or
	// assignment could not be decoded, by kind.
	groupDecodeErrors *prometheus.CounterVec
	// kafkaUp: 1 when the latest cluster metadata read answered, 0 when
	// every bootstrap broker failed (HourglassKafkaDown in rules.yml).
	kafkaUp prometheus.Gauge
}

// offsetReadKinds are the kinds of hourglass_lagmon_offset_read_errors_total.
var offsetReadKinds = []string{"groups", "committed", "describe", "metadata", "log_start", "last_stable", "end", "inconsistent"}

func newMetrics(reg prometheus.Registerer, m *Monitor) *metrics {
	mt := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_lagmon_polls_total", Help: "Polls of Kafka offsets, by result (ok, error)."}, []string{"result"}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_lagmon_poll_seconds", Help: "Duration of one poll.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		tsFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_lagmon_timestamp_reads_total", Help: "Record timestamp look-ups for time lag, by result (cached, fetched, error)."}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_lagmon_config_reloads_total", Help: "Configuration reloads, by result (ok, error)."}, []string{"result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_lagmon_notifications_total", Help: "Alert notifications sent, by receiver (alertmanager, webhook) and result (ok, error)."}, []string{"receiver", "result"}),
	}
	mt.offsetReadErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_lagmon_offset_read_errors_total",
		Help: "Offset reads that failed or contradicted each other, by kind (groups, committed, describe, metadata, log_start, last_stable, end, inconsistent); the partitions concerned are reported unknown for that poll, never 0."},
		[]string{"kind"})
	for _, k := range offsetReadKinds {
		mt.offsetReadErrors.WithLabelValues(k)
	}
	mt.groupDecodeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_lagmon_group_decode_errors_total",
		Help: "Group members whose consumer-protocol subscription or assignment (from DescribeGroups) could not be decoded, by kind (subscription, assignment); the group reports the error and is UNKNOWN."},
		[]string{"kind"})
	for _, k := range []string{"subscription", "assignment"} {
		mt.groupDecodeErrors.WithLabelValues(k)
	}
	mt.kafkaUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hourglass_lagmon_kafka_up",
		Help: "1 when the latest poll read cluster metadata from a bootstrap broker, 0 when every one failed (Kafka unreachable from the monitor)."})
	// One alert path (docs/adr/004-one-alert-path.md): while the monitor's own
	// notifier is on, rules.yml's status group stays silent (unless on() this == 1).
	notifierOn := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hourglass_lagmon_notifier_enabled",
		Help: "1 when the monitor sends its status alerts itself (alertmanager_urls or webhook_urls set), 0 when Prometheus rules are the alert path."},
		func() float64 {
			if cfg := m.st.Load().cfg; len(cfg.AlertmanagerURLs)+len(cfg.WebhookURLs) > 0 {
				return 1
			}
			return 0
		})
	mt.signals = newSignalCollector(m)
	reg.MustRegister(mt.polls, mt.pollSeconds, mt.tsFetches, mt.reloads, mt.alerts, mt.offsetReadErrors, mt.groupDecodeErrors,
		mt.kafkaUp, notifierOn, &snapshotCollector{m: m}, mt.signals)
	return mt
}

var (
	partLabels  = []string{"group", "topic", "partition"}
	groupLabels = []string{"group"}

	descLagRecords = prometheus.NewDesc("hourglass_consumer_lag_records",
		"Offset lag: high watermark minus committed offset, floored at 0; for a partition never committed by a group starting at earliest, high watermark minus log start. Absent when unknown (see hourglass_consumer_lag_unknown).", partLabels, nil)
	descLagUnknown = prometheus.NewDesc("hourglass_consumer_lag_unknown",
		"1 for a partition whose lag is unknown this poll, with the reason (never_committed, offset_read_error, inconsistent_read).", append(append([]string{}, partLabels...), "reason"), nil)
	descLagSeconds = prometheus.NewDesc("hourglass_consumer_lag_seconds",
		"Time lag: now minus the timestamp (CreateTime or LogAppendTime, as the batch says) of the record at the committed offset; 0 when caught up.", partLabels, nil)
	descCommitted = prometheus.NewDesc("hourglass_consumer_committed_offset",
		"Committed offset. Absent for partitions the group never committed.", partLabels, nil)
	descUncommitted = prometheus.NewDesc("hourglass_consumer_uncommitted_partition",
		"1 for a partition of a watched topic the group never committed (status UNCOMMITTED when it holds records past the group's start position).", partLabels, nil)
	descEnd = prometheus.NewDesc("hourglass_consumer_end_offset",
		"High watermark of the partition, read after the committed offset.", partLabels, nil)
	descLogStart = prometheus.NewDesc("hourglass_consumer_log_start_offset",
		"Log start offset of the partition.", partLabels, nil)
	descOpenTxnRecords = prometheus.NewDesc("hourglass_consumer_open_transaction_records",
		"Records past the last stable offset (open transactions) that a read_committed group cannot read yet; not part of its lag.", partLabels, nil)
	descOpenTxnAge = prometheus.NewDesc("hourglass_consumer_open_transaction_age_seconds",
		"Age of the first record past the last stable offset: how long the oldest open transaction has held back a read_committed group.", partLabels, nil)
	descCondition = prometheus.NewDesc("hourglass_consumer_group_condition",
		"1 for every status rule that holds for the group (its status is the most severe); a rule that stops holding has no series.", []string{"group", "condition"}, nil)
	descLost = prometheus.NewDesc("hourglass_consumer_lost_records",
		"Records deleted before the group read them (DATA_LOSS), over the window.", partLabels, nil)
	descPartStatus = prometheus.NewDesc("hourglass_consumer_partition_status",
		"Status of the partition as a severity code: 0 OK, 2 UNKNOWN, 3 WARN, 4 REWIND, 5 AT_RISK, 6 OPEN_TRANSACTION, 7 UNCOMMITTED, 8 STALL, 9 STOP, 10 BREACH, 11 DATA_LOSS.", partLabels, nil)

	descSLAStatus = prometheus.NewDesc("hourglass_sla_status",
		"1 for the current status of a consumer group, metric or job (scope), 0 for the others.", []string{"scope", "name", "status"}, nil)

	descProduceRate = prometheus.NewDesc("hourglass_consumer_produce_rate",
		"Records per second produced to the group's partitions over the window.", groupLabels, nil)
	descConsumeRate = prometheus.NewDesc("hourglass_consumer_consume_rate",
		"Records per second the group committed over the window.", groupLabels, nil)
	descDrainETA = prometheus.NewDesc("hourglass_consumer_drain_eta_seconds",
		"Forecast: seconds until the group's lag is 0 at current rates; +Inf when it does not drain.", groupLabels, nil)
	descCrossing = prometheus.NewDesc("hourglass_consumer_sla_crossing_seconds",
		"Forecast: seconds until the group's time lag reaches its SLA at current rates (0: over it now); +Inf when it does not.", groupLabels, nil)
	descSLA = prometheus.NewDesc("hourglass_consumer_sla_seconds",
		"The group's time-lag SLA.", groupLabels, nil)
	descNeeded = prometheus.NewDesc("hourglass_consumer_consumers_needed",
		"Advice: consumers (bounded by partitions) the group needs to drain within its SLA. Absent when unknown.", groupLabels, nil)
	descScale = prometheus.NewDesc("hourglass_consumer_scale_factor",
		"Advice: needed consumption rate over the observed one (1: enough). Absent when unknown.", groupLabels, nil)
	descMembers = prometheus.NewDesc("hourglass_consumer_members",
		"Members of the group (0 for consumers that commit without membership, such as Spark).", groupLabels, nil)
	descPartBound = prometheus.NewDesc("hourglass_consumer_partition_bound",
		"Advice: 1 when one consumer per partition is not enough; the topic needs more partitions.", groupLabels, nil)

	descFreshness = prometheus.NewDesc("hourglass_metric_freshness_seconds",
		"Age of the end of the newest complete hourly window of a metric, per tenant.", []string{"metric", "tenant"}, nil)
	descTenantBreach = prometheus.NewDesc("hourglass_metric_tenant_breach",
		"1 when a tenant's hourly window of the metric is missing past its deadline (the tenant's freshness status is BREACH), 0 otherwise. One series per metric and tenant seen in Elasticsearch.", []string{"metric", "tenant"}, nil)
	descJobDuration = prometheus.NewDesc("hourglass_job_run_duration_seconds",
		"Duration of the latest batch run of a metric's job.", []string{"metric"}, nil)
	descJobOverrun = prometheus.NewDesc("hourglass_job_run_overrun",
		"1 when the latest batch run took longer than its period (needs more resources).", []string{"metric"}, nil)
)

// snapshotCollector exports the latest snapshot. Series exist only for what
// the snapshot holds, so a group, topic or partition that disappears loses
// its series at the next poll with no bookkeeping.
type snapshotCollector struct{ m *Monitor }

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagRecords, descLagUnknown, descLagSeconds, descCommitted, descUncommitted, descEnd, descLogStart,
		descLost, descPartStatus, descSLAStatus, descProduceRate, descConsumeRate, descDrainETA, descCrossing, descSLA,
		descNeeded, descScale, descMembers, descPartBound, descFreshness, descTenantBreach, descJobDuration, descJobOverrun,
		descOpenTxnRecords, descOpenTxnAge, descCondition} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.m.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	statusSet := func(scope, name string, cur status.Status) {
		for _, s := range status.All() {
			v := 0.0
			if s == cur {
				v = 1
			}
			gauge(descSLAStatus, v, scope, name, s.String())
		}
	}
	for _, g := range snap.Groups {
		for _, p := range g.Partitions {
			l := []string{g.Group, p.Topic, strconv.Itoa(p.Partition)}
			// A value not read this poll has no series: absent, never 0.
			if p.Lag.Known {
				gauge(descLagRecords, float64(p.Lag.N), l...)
			}
			if p.Committed.Known {
				gauge(descCommitted, float64(p.Committed.N), l...)
			} else if p.CommittedUnknownReason == ReasonNeverCommitted {
				gauge(descUncommitted, 1, l...)
			}
			if !p.Lag.Known {
				gauge(descLagUnknown, 1, append(l, p.LagUnknownReason)...)
			}
			if p.TimeLag.Known {
				gauge(descLagSeconds, p.TimeLag.D.Seconds(), l...)
			}
			if p.End.Known {
				gauge(descEnd, float64(p.End.N), l...)
				gauge(descLogStart, float64(p.LogStart.N), l...)
			}
			if p.OpenTxnRecords > 0 {
				gauge(descOpenTxnRecords, float64(p.OpenTxnRecords), l...)
				if p.OpenTxnAge.Known {
					gauge(descOpenTxnAge, p.OpenTxnAge.D.Seconds(), l...)
				}
			}
			gauge(descLost, float64(p.Lost), l...)
			gauge(descPartStatus, float64(p.Status), l...)
		}
		statusSet("consumer_group", g.Group, g.Status)
		for _, c := range g.Conditions {
			gauge(descCondition, 1, g.Group, c.String())
		}
		f := g.Forecast
		gauge(descSLA, g.SLA.D.Seconds(), g.Group)
		gauge(descMembers, float64(g.Members), g.Group)
		if f.Known {
			gauge(descProduceRate, f.ProduceRate, g.Group)
			gauge(descConsumeRate, f.ConsumeRate, g.Group)
			eta := math.Inf(1)
			if f.Drains {
				eta = f.DrainETA.Seconds()
			}
			gauge(descDrainETA, eta, g.Group)
		}
		if f.Known || f.Crosses {
			cross := math.Inf(1)
			if f.Crosses {
				cross = f.CrossIn.Seconds()
			}
			gauge(descCrossing, cross, g.Group)
		}
		if g.Advice.Known {
			gauge(descNeeded, float64(g.Advice.ConsumersNeeded), g.Group)
			gauge(descScale, g.Advice.ScaleFactor, g.Group)
			b := 0.0
			if g.Advice.PartitionBound {
				b = 1
			}
			gauge(descPartBound, b, g.Group)
		}
	}
	for _, mf := range snap.Freshness {
		statusSet("metric", mf.Metric, mf.Status)
		for _, t := range mf.Tenants {
			if t.Age.Known { // a tenant with no hourly window has no age, not 0
				gauge(descFreshness, t.Age.D.Seconds(), mf.Metric, t.Tenant)
			}
			breach := 0.0
			if t.Status == status.Breach {
				breach = 1
			}
			gauge(descTenantBreach, breach, mf.Metric, t.Tenant)
		}
	}
	for _, j := range snap.JobRuns {
		gauge(descJobDuration, j.Duration.D.Seconds(), j.Metric)
		v := 0.0
		if j.Overrun {
			v = 1
		}
		gauge(descJobOverrun, v, j.Metric)
		s := status.OK
		if j.Overrun {
			s = status.Warn
		}
		statusSet("job", j.Metric, s)
	}
}
