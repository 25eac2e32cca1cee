// Package kafkaadmin holds the few Kafka administration calls services make
// themselves, so each is written once. (Creating topics belongs to
// internal/topology, which owns their names and shapes.)
package kafkaadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

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
