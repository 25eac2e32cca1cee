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

// TopicReady returns nil when the broker serves metadata for topic.
func TopicReady(ctx context.Context, client *kafka.Client, topic string) error {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range meta.Topics {
		if t.Name == topic && t.Error != nil {
			return fmt.Errorf("kafka topic %s: %w", topic, t.Error)
		}
	}
	return nil
}
