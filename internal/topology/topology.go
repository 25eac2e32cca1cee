// Package topology owns the names of Hourglass's Kafka topics and consumer
// groups (DESIGN.md, "Data contracts"). Nobody spells them elsewhere.
package topology

const (
	// RawTopic carries every accepted traffic record, keyed by tenant.
	RawTopic = "hourglass.logs.raw"
	// DLQTopic carries rejected records with a `reason` header.
	DLQTopic = "hourglass.logs.dlq"
	// ReasonHeader is the DLQ header holding a machine-readable reason code.
	ReasonHeader = "reason"

	RouterGroup   = "hourglass-router"
	ArchiverGroup = "hourglass-archiver"
	IndexerGroup  = "hourglass-indexer"

	metricTopicPrefix = "hourglass.metric."
	metricGroupPrefix = "hourglass-metrics-"
)

// MetricTopic is the topic the router fills for one metric.
func MetricTopic(metric string) string { return metricTopicPrefix + metric }

// MetricGroup is the consumer group under which a metric job commits its offsets.
func MetricGroup(metric string) string { return metricGroupPrefix + metric }
