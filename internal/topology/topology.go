// Package topology owns the names of Hourglass's Kafka topics and consumer
// groups (DESIGN.md, "Data contracts"), and the shape each topic is created
// with. Nobody spells them elsewhere.
//
// Every service ensures, before it produces or joins a group, that the
// topics it touches exist (Ensure): a consumer that joined its group before
// its topic existed would be assigned no partitions, so start order must not
// matter.
package topology

const (
	// RawTopic carries every accepted traffic record, keyed by tenant.
	RawTopic = "hourglass.logs.raw"
	// DLQTopic carries rejected records, as internal/dlq's messages.
	DLQTopic = "hourglass.logs.dlq"
	// QueryEventsTopic carries the query service's job state changes, keyed by job id.
	QueryEventsTopic = "hourglass.query.events"

	// RawPartitions is the raw topic's partition count when a service has
	// to create it (the first one to start does). Tenants map to partitions
	// by the murmur2 hash of the key, so more partitions spread more tenants.
	RawPartitions = 6
	// DLQPartitions is the DLQ topic's partition count.
	DLQPartitions = 3

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

// Raw is the raw topic as services create it; name overrides RawTopic when
// set (tests use their own topics).
func Raw(name string) Topic {
	if name == "" {
		name = RawTopic
	}
	return Topic{Name: name, Partitions: RawPartitions}
}

// DLQ is the DLQ topic as services create it.
func DLQ(name string) Topic {
	if name == "" {
		name = DLQTopic
	}
	return Topic{Name: name, Partitions: DLQPartitions}
}
