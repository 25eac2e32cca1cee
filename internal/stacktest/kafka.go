package stacktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Brokers returns the local stack's Kafka bootstrap address.
func Brokers(tb testing.TB) string { return Get(tb, "HOURGLASS_BROKERS") }

// CreateTopic creates a topic and deletes it when the test ends.
func CreateTopic(tb testing.TB, brokers, topic string, partitions int) {
	tb.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		tb.Fatalf("stacktest: create topic %s: %v", topic, err)
	}
	if terr := res.Errors[topic]; terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
		tb.Fatalf("stacktest: create topic %s: %v", topic, terr)
	}
	DeleteTopicsOnCleanup(tb, brokers, topic)
}

// DeleteTopicsOnCleanup deletes topics (created by the code under test) when
// the test ends.
func DeleteTopicsOnCleanup(tb testing.TB, brokers string, topics ...string) {
	tb.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 30 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	})
}

// Produce writes messages with acks=all and murmur2 partitioning by key.
func Produce(tb testing.TB, brokers, topic string, msgs ...kafka.Message) {
	tb.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			tb.Fatalf("stacktest: produce to %s: %v", topic, err)
		}
		msgs = msgs[n:]
	}
}

// EndOffsets returns the log end offset of every partition of topic. A
// retriable Kafka error (a topic created a moment ago: its leader is in the
// metadata before the broker serves it, NotLeaderForPartition) is retried
// for up to 30 s.
func EndOffsets(ctx context.Context, brokers, topic string) (map[int]int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := endOffsets(ctx, brokers, topic)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() || time.Now().After(deadline) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func endOffsets(ctx context.Context, brokers, topic string) (map[int]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, errors.Join(errors.New("no metadata for "+topic), topicErr(meta))
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range meta.Topics[0].Partitions {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

func topicErr(meta *kafka.MetadataResponse) error {
	if len(meta.Topics) == 1 {
		return meta.Topics[0].Error
	}
	return nil
}

// Committed returns a group's committed offsets for topic (-1: none).
func Committed(ctx context.Context, brokers, group, topic string, partitions int) (map[int]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, res.Error
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// CommittedTotal is the sum of a group's committed offsets over the first
// partitions partitions of topic (a partition without a commit counts 0): the
// records it has consumed when every partition started at offset 0.
func CommittedTotal(ctx context.Context, brokers, group, topic string, partitions int) (int64, error) {
	c, err := Committed(ctx, brokers, group, topic, partitions)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, o := range c {
		sum += max(o, 0)
	}
	return sum, nil
}

// WaitCommitted polls (every 10 ms, so a benchmark can time it) until
// group's CommittedTotal over the first partitions partitions of topic
// reaches n, failing the test after timeout.
func WaitCommitted(tb testing.TB, brokers, group, topic string, partitions int, n int64, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := CommittedTotal(ctx, brokers, group, topic, partitions)
		cancel()
		if err == nil && got >= n {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = strconv.FormatInt(got, 10) + " committed"
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("stacktest: group %s did not commit %d records of %s within %s: %s", group, n, topic, timeout, last)
}

// WaitCaughtUp polls until group has committed the end offset of every
// partition of topic, failing the test after timeout.
func WaitCaughtUp(tb testing.TB, brokers, group, topic string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		end, err := EndOffsets(ctx, brokers, topic)
		var committed map[int]int64
		if err == nil {
			committed, err = Committed(ctx, brokers, group, topic, len(end))
		}
		cancel()
		if err == nil {
			done := true
			for p, e := range end {
				if e > 0 && committed[p] < e { // an empty partition has nothing to commit
					done = false
				}
			}
			if done {
				return
			}
			last = "end " + fmtOffsets(end) + " committed " + fmtOffsets(committed)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	tb.Fatalf("stacktest: group %s did not catch up on %s within %s: %s", group, topic, timeout, last)
}

// ReadAll reads every message currently in topic, partition by partition.
func ReadAll(tb testing.TB, brokers, topic string) []kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A broker that just (re)started can answer with a transient error: retry.
	var end map[int]int64
	var err error
	for try := 0; try < 60; try++ {
		if end, err = EndOffsets(ctx, brokers, topic); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("stacktest: end offsets of %s: %v", topic, err)
	}
	var out []kafka.Message
	for p, e := range end {
		if e == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				tb.Fatalf("stacktest: read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset >= e-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

func fmtOffsets(m map[int]int64) string {
	parts := make([]string, 0, len(m))
	for p, o := range m {
		parts = append(parts, strconv.Itoa(p)+":"+strconv.FormatInt(o, 10))
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// AddPartitions grows topic to total partitions.
func AddPartitions(tb testing.TB, brokers, topic string, total int) {
	tb.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: int32(total)}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		tb.Fatalf("stacktest: add partitions to %s: %v", topic, err)
	}
}

// ProduceToPartition writes messages to one partition with acks=all.
func ProduceToPartition(tb testing.TB, brokers, topic string, partition int, msgs ...kafka.Message) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A partition just added is unknown to a client's cached metadata: wait
	// until the cluster serves it, then write with a transport of its own.
	for Partitions(ctx, brokers, topic) <= partition {
		select {
		case <-ctx.Done():
			tb.Fatalf("stacktest: partition %s/%d never appeared", topic, partition)
		case <-time.After(100 * time.Millisecond):
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Transport: &kafka.Transport{}, Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		msg := err.Error()
		tb.Fatalf("stacktest: produce to %s/%d: %s", topic, partition, msg[:min(len(msg), 500)])
	}
}

// Partitions returns topic's partition count, 0 when it does not exist.
func Partitions(ctx context.Context, brokers, topic string) int {
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return 0
	}
	return len(meta.Topics[0].Partitions)
}

// TrafficLines returns n valid traffic records of tenant, timestamped now,
// with request ids prefix-0 … prefix-(n-1), as Kafka messages keyed by tenant.
func TrafficLines(tenant, prefix string, n int) []kafka.Message {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(tenant), Value: []byte(fmt.Sprintf(
			`{"timestamp":%q,"tenant":%q,"request_id":"%s-%d","method":"GET","path":"/","status":200,"duration_ms":1.5,"bytes_out":10}`,
			now, tenant, prefix, i))}
	}
	return msgs
}

// CommitOffsets commits offsets for group without membership (as Spark
// does), retrying while the broker's group coordinator is not ready: on a
// fresh broker the first commit creates __consumer_offsets and is answered
// "coordinator not available" or "not coordinator" for a few seconds.
func CommitOffsets(ctx context.Context, brokers, group, topic string, offsets map[int]int64) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	var cs []kafka.OffsetCommit
	for p, o := range offsets {
		cs = append(cs, kafka.OffsetCommit{Partition: p, Offset: o})
	}
	for {
		err := commitOnce(ctx, client, group, topic, cs)
		if err == nil || !retriableCoordinator(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("commit %s: %w (last: %v)", group, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func commitOnce(ctx context.Context, client *kafka.Client, group, topic string, cs []kafka.OffsetCommit) error {
	res, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: cs}})
	if err != nil {
		return err
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return p.Error
			}
		}
	}
	return nil
}

func retriableCoordinator(err error) bool {
	return errors.Is(err, kafka.GroupCoordinatorNotAvailable) || errors.Is(err, kafka.NotCoordinatorForGroup) ||
		errors.Is(err, kafka.GroupLoadInProgress)
}
