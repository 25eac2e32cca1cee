package topology

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topic is a topic as Hourglass creates it.
type Topic struct {
	Name       string
	Partitions int
	// Replication is the replication factor; 0 picks min(3, brokers).
	Replication int
}

// Replication picks the replication factor and min.insync.replicas for a
// cluster of n brokers: three copies where there are three brokers, and
// writes (acks=all) that survive one broker down (min ISR = RF−1, at least
// 1). A single-broker stack gets 1 and 1.
func Replication(brokers int) (rf, minISR int) {
	rf = min(3, max(1, brokers))
	return rf, max(1, rf-1)
}

// Ensure creates the topics that do not exist yet and waits until the
// cluster serves metadata for every one of them. Existing topics are left as
// they are (their partition count is never reduced; Ensure does not add
// partitions either). It is safe to call from several services at once.
func Ensure(ctx context.Context, brokers []string, topics ...Topic) error {
	if len(topics) == 0 {
		return nil
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("topology: read cluster metadata: %w", err)
	}
	rf, minISR := Replication(len(meta.Brokers))
	existing := map[string]bool{}
	for _, t := range meta.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			existing[t.Name] = true
		}
	}
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		if existing[t.Name] {
			continue
		}
		r, isr := rf, minISR
		if t.Replication > 0 {
			r, isr = t.Replication, max(1, t.Replication-1)
		}
		cfgs = append(cfgs, kafka.TopicConfig{
			Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: r,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(isr)}},
		})
	}
	if len(cfgs) > 0 {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
		if err != nil {
			return fmt.Errorf("topology: create topics: %w", err)
		}
		var errs []error
		for topic, terr := range res.Errors {
			if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("topology: create topic %s: %w", topic, terr))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return waitServed(ctx, client, topics)
}

// waitServed polls metadata until every topic has its partitions with a
// leader: a consumer that joins before that would be assigned nothing.
func waitServed(ctx context.Context, client *kafka.Client, topics []Topic) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		missing := ""
		if err != nil {
			missing = err.Error()
		} else {
			missing = unserved(meta, names)
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topology: waiting for topics %v: %s: %w", names, missing, ctx.Err())
		case <-tick.C:
		}
	}
}

func unserved(meta *kafka.MetadataResponse, names []string) string {
	seen := map[string]kafka.Topic{}
	for _, t := range meta.Topics {
		seen[t.Name] = t
	}
	for _, n := range names {
		t, ok := seen[n]
		switch {
		case !ok:
			return n + " not in metadata"
		case t.Error != nil:
			return fmt.Sprintf("%s: %v", n, t.Error)
		case len(t.Partitions) == 0:
			return n + " has no partitions"
		}
		for _, p := range t.Partitions {
			if p.Leader.Host == "" || p.Error != nil {
				return fmt.Sprintf("%s/%d has no leader", n, p.ID)
			}
		}
	}
	return ""
}
