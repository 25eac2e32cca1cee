package catalog

import "github.com/hourglass-io/hourglass/internal/topology"

// TopicSpec is one metric's Kafka topic and the consumer group its job uses.
type TopicSpec struct {
	Metric        string `json:"metric"`
	Topic         string `json:"topic"`
	Partitions    int    `json:"partitions"`
	ConsumerGroup string `json:"consumer_group"`
}

// Topics lists the metric topics of the catalog, in catalog order.
func (c *Catalog) Topics() []TopicSpec {
	out := make([]TopicSpec, len(c.Metrics))
	for i, m := range c.Metrics {
		out[i] = TopicSpec{m.Name, topology.MetricTopic(m.Name), m.Partitions, topology.MetricGroup(m.Name)}
	}
	return out
}
