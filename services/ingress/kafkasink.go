package ingress

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/kafkaadmin"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// KafkaSink writes entries straight to Kafka (direct mode): accepted records
// to the raw topic keyed by tenant, rejected ones to the DLQ as internal/dlq
// messages (stage ingress); acks=all. The writer reconnects by itself when a broker returns.
type KafkaSink struct {
	w          *kafka.Writer
	client     *kafka.Client
	brokers    []string
	topic      string
	dlq        string
	partitions int // of the topics, when EnsureTopics creates them
}

// KafkaSinkConfig configures the Kafka sink.
type KafkaSinkConfig struct {
	Brokers    []string
	Topic      string // default hourglass.logs.raw
	DLQTopic   string // default hourglass.logs.dlq
	Partitions int    // for the topics when they have to be created
}

// NewKafkaSink prepares the sink; it opens nothing (EnsureTopics creates the
// topics, the first Write connects).
func NewKafkaSink(cfg KafkaSinkConfig) (*KafkaSink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("kafka sink: no brokers")
	}
	if cfg.Topic == "" {
		cfg.Topic = topology.RawTopic
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = topology.DLQTopic
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 6
	}
	s := &KafkaSink{
		client:  &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second},
		brokers: cfg.Brokers,
		topic:   cfg.Topic,
		dlq:     cfg.DLQTopic,
		w: &kafka.Writer{
			Addr:            kafka.TCP(cfg.Brokers...),
			Balancer:        &kafka.Murmur2Balancer{},
			RequiredAcks:    kafka.RequireAll,
			BatchSize:       1000,
			BatchBytes:      16 << 20,
			BatchTimeout:    2 * time.Millisecond,
			MaxAttempts:     3,
			WriteBackoffMin: 50 * time.Millisecond,
			WriteBackoffMax: 500 * time.Millisecond,
			Compression:     kafka.Lz4,
			Transport:       &kafka.Transport{DialTimeout: 3 * time.Second},
		},
	}
	s.partitions = cfg.Partitions
	return s, nil
}

// EnsureTopics creates the raw and DLQ topics if missing. An unreachable
// broker is an error the caller may log and go on from: /readyz reports a
// topic that does not exist, and requests get 503 until it does.
func (s *KafkaSink) EnsureTopics(ctx context.Context) error {
	return topology.Ensure(ctx, s.brokers, topology.Topic{Name: s.topic, Partitions: s.partitions}, topology.DLQ(s.dlq))
}

// canonical marks the raw records as ingress's canonical encoding of
// validated records (the archiver and the router then decode less).
var canonical = []kafka.Header{topology.CanonicalMark()}

// Write produces entries and returns once Kafka acknowledged all of them.
func (s *KafkaSink) Write(ctx context.Context, entries []Entry) error {
	msgs := make([]kafka.Message, len(entries))
	now := time.Now()
	for i, e := range entries {
		if e.Stream == StreamDLQ {
			msgs[i] = dlqMessage(e, now).Kafka(s.dlq)
			continue
		}
		msgs[i] = kafka.Message{Topic: s.topic, Key: []byte(e.Tenant), Value: e.Value, Headers: canonical}
	}
	if err := s.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka sink: write %d records: %w", len(msgs), err)
	}
	return nil
}

// Ready reports whether the broker serves the raw topic's metadata.
func (s *KafkaSink) Ready(ctx context.Context) error {
	return kafkaadmin.TopicReady(ctx, s.brokers, s.topic)
}

// Close flushes and closes the writer.
func (s *KafkaSink) Close() error { return s.w.Close() }
