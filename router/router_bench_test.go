//go:build bench

package router_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/kafkabatch"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/router"
)

// TestBenchRouter measures the router's throughput (raw records consumed,
// decoded, filtered and fanned out to the six catalog metrics, acks=all, per
// second) beside a bare kafka-go consume-and-produce loop with the same
// client settings that writes the same output records (same count, same
// bytes, same keys, to copies of the metric topics), computed before it
// starts: the cost of Kafka I/O alone. Same input, same run, repetitions
// interleaved.
func TestBenchRouter(t *testing.T) {
	const n = 200_000
	e := newEnv(t)
	e.generate(t, 77, n, 0)
	outputs, perInput := routedOutputs(t, e)
	reps := benchreport.Reps()
	res := benchreport.Result{
		Goal: 0.8, // issue 16: ≥ 0.8 of a bare loop producing the same records
		Name: "router fan-out", Unit: "records/s",
		Subject:  "hourglass router (6 metrics)",
		Baseline: "bare consume→produce loop writing the same output records",
		Notes:    fmt.Sprintf("200k generated records (~380 B), 5 tenants, 3 partitions; %.1f projected records out per input", perInput),
	}
	for rep := range reps {
		group := stacktest.UniqueName("bench-router")
		res.Subj = append(res.Subj, float64(n)/timeRouter(t, e, group, rep).Seconds())
		group = stacktest.UniqueName("bench-bare")
		res.Base = append(res.Base, float64(n)/timeBareLoop(t, e, group, outputs).Seconds())
	}
	benchreport.Write(t, res)
}

// inputKey names one raw record: partition and offset.
type inputKey struct {
	partition int
	offset    int64
}

// routedOutputs computes, for each raw record, the messages the router
// writes for it (the catalog's routes: filter and projection), with their
// topics renamed to bare copies created here.
func routedOutputs(t *testing.T, e *testEnv) (map[inputKey][]kafka.Message, float64) {
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	routes := c.Routes()
	bare := map[string]string{}
	for _, rt := range routes {
		bare[rt.Topic] = stacktest.UniqueName("bench-bare-" + rt.Metric)
		stacktest.CreateTopic(t, e.brokers, bare[rt.Topic], rt.Partitions)
	}
	out := map[inputKey][]kafka.Message{}
	var total int
	raw := stacktest.ReadAll(t, e.brokers, e.raw)
	for _, m := range raw {
		rec, _, err := record.Decode(m.Value)
		require.NoError(t, err)
		var msgs []kafka.Message
		for i := range routes {
			if routes[i].Match(&rec) {
				msgs = append(msgs, kafka.Message{Topic: bare[routes[i].Topic], Key: []byte(rec.Tenant), Value: routes[i].Project(nil, &rec)})
			}
		}
		out[inputKey{m.Partition, m.Offset}] = msgs
		total += len(msgs)
	}
	return out, float64(total) / float64(len(raw))
}

func timeRouter(t *testing.T, e *testEnv, group string, rep int) time.Duration {
	cfg := e.config()
	cfg.Group = group
	r, err := router.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	stacktest.WaitCommitted(t, e.brokers, group, e.raw, 3, 200_000, 5*time.Minute)
	elapsed := time.Since(start)
	cancel()
	require.NoError(t, <-done)
	return elapsed
}

func timeBareLoop(t *testing.T, e *testEnv, group string, outputs map[inputKey][]kafka.Message) time.Duration {
	cfg := router.DefaultConfig()
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{e.brokers}, GroupID: group, Topic: e.raw, StartOffset: kafka.FirstOffset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: cfg.BatchSize,
	})
	writer := &kafka.Writer{Addr: kafka.TCP(e.brokers), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: cfg.BatchSize, BatchBytes: 16 << 20,
		BatchTimeout: time.Millisecond, Compression: kafka.Lz4}
	defer reader.Close()
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var total int
	for total < 200_000 {
		batch, err := kafkabatch.Fetch(ctx, reader, cfg.BatchSize, cfg.BatchWait)
		require.NoError(t, err)
		var outMsgs []kafka.Message
		for _, m := range batch {
			outMsgs = append(outMsgs, outputs[inputKey{m.Partition, m.Offset}]...)
		}
		require.NoError(t, writer.WriteMessages(ctx, outMsgs...))
		require.NoError(t, reader.CommitMessages(ctx, batch...))
		total += len(batch)
	}
	return time.Since(start)
}
