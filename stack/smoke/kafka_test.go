//go:build integration

package smoke

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestKafkaProduceConsume writes keyed records with acks=all to a new
// 3-partition topic and reads them back through a consumer group: every record
// comes back once, with its key, on the partition its key hashes to, and the
// group's committed offsets equal the log end offsets.
func TestKafkaProduceConsume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := stacktest.Get(t, "HOURGLASS_BROKERS")
	topic := stacktest.UniqueName("smoke-kafka")
	stacktest.CreateTopic(t, brokers, topic, 3)

	const n = 2000
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    200,
		BatchTimeout: 5 * time.Millisecond,
	}
	want := map[string]string{}
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		key, val := "tenant-"+strconv.Itoa(i%7), fmt.Sprintf(`{"seq":%d}`, i)
		want[val] = key
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(val)})
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())

	group := stacktest.UniqueName("smoke-group")
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{brokers}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	got := map[string]string{}
	partitionOfKey := map[string]int{}
	endOffsets := map[int]int64{}
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "after %d of %d records", len(got), n)
		_, dup := got[string(m.Value)]
		require.False(t, dup, "record %s delivered twice", m.Value)
		got[string(m.Value)] = string(m.Key)
		if p, seen := partitionOfKey[string(m.Key)]; seen {
			require.Equal(t, p, m.Partition, "key %s on two partitions", m.Key)
		}
		partitionOfKey[string(m.Key)] = m.Partition
		endOffsets[m.Partition] = m.Offset + 1
		require.NoError(t, r.CommitMessages(ctx, m))
	}
	require.Equal(t, want, got)

	// The group's committed offsets, as the broker reports them.
	client := &kafka.Client{Addr: kafka.TCP(brokers)}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}},
	})
	require.NoError(t, err)
	committed := map[int]int64{}
	for _, p := range res.Topics[topic] {
		require.NoError(t, p.Error)
		if p.CommittedOffset >= 0 {
			committed[p.Partition] = p.CommittedOffset
		}
	}
	require.Equal(t, endOffsets, committed)
}
