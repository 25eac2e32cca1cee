// Package kafkaadmin holds the few Kafka administration calls services make
// themselves (creating the topics they write to), so each is written once.
package kafkaadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Topic is a topic to ensure.
type Topic struct {
	Name       string
	Partitions int
}

// EnsureTopics creates the topics that do not exist yet, with the broker's
// default replication factor. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, client *kafka.Client, topics ...Topic) error {
	if len(topics) == 0 {
		return nil
	}
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, t := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: -1}
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for topic, terr := range res.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", topic, terr))
		}
	}
	return errors.Join(errs...)
}

// TopicReady returns nil when a broker answers for topic over a fresh
// connection. (kafka.Client.Metadata may be answered from the transport's
// metadata cache, so it does not notice a dead broker.)
func TopicReady(ctx context.Context, brokers []string, topic string) error {
	var errs []error
	for _, b := range brokers {
		var d kafka.Dialer
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, fmt.Errorf("dial %s: %w", b, err))
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		parts, err := conn.ReadPartitions(topic)
		conn.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata of %s from %s: %w", topic, b, err))
			continue
		}
		if len(parts) == 0 {
			errs = append(errs, fmt.Errorf("topic %s has no partitions", topic))
			continue
		}
		return nil
	}
	return fmt.Errorf("kafka: %w", errors.Join(errs...))
}
