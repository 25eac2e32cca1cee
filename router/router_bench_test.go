//go:build bench

package router_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/router"
)

// TestBenchRouter measures the router's throughput (raw records consumed,
// decoded, filtered and fanned out to the six catalog metrics, acks=all, per
// second) beside a bare kafka-go consume-and-produce loop with the same
// client settings copying each record once to one topic. Same input, same
// run, repetitions interleaved.
func TestBenchRouter(t *testing.T) {
	const n = 200_000
	e := newEnv(t)
	e.generate(t, 77, n, 0)
	reps := benchreport.Reps()
	res := benchreport.Result{
		Goal: 0.8, // issue 16: ≥ 0.8 of a bare loop producing the same records
		Name: "router fan-out", Unit: "records/s",
		Subject:  "hourglass router (6 metrics)",
		Baseline: "bare consume→produce loop",
		Notes:    "200k generated records (~380 B); the router writes ~4.9 projected records per input",
	}
	for rep := range reps {
		group := stacktest.UniqueName("bench-router")
		res.Subj = append(res.Subj, float64(n)/timeRouter(t, e, group, rep).Seconds())
		group = stacktest.UniqueName("bench-bare")
		res.Base = append(res.Base, float64(n)/timeBareLoop(t, e, group).Seconds())
	}
	benchreport.Write(t, res)
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

func timeBareLoop(t *testing.T, e *testEnv, group string) time.Duration {
	out := stacktest.UniqueName("bench-bare-out")
	stacktest.CreateTopic(t, e.brokers, out, 3)
	cfg := router.DefaultConfig()
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{e.brokers}, GroupID: group, Topic: e.raw, StartOffset: kafka.FirstOffset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: cfg.BatchSize,
	})
	writer := &kafka.Writer{Addr: kafka.TCP(e.brokers), Topic: out, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: cfg.BatchSize, BatchBytes: 16 << 20,
		BatchTimeout: time.Millisecond, Compression: kafka.Lz4}
	defer reader.Close()
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var total int
	for total < 200_000 {
		first, err := reader.FetchMessage(ctx)
		require.NoError(t, err)
		batch := []kafka.Message{first}
		wctx, wcancel := context.WithTimeout(ctx, cfg.BatchWait)
		for len(batch) < cfg.BatchSize {
			m, err := reader.FetchMessage(wctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		wcancel()
		outMsgs := make([]kafka.Message, len(batch))
		for i, m := range batch {
			outMsgs[i] = kafka.Message{Key: m.Key, Value: m.Value}
		}
		require.NoError(t, writer.WriteMessages(ctx, outMsgs...))
		require.NoError(t, reader.CommitMessages(ctx, batch...))
		total += len(batch)
	}
	return time.Since(start)
}
