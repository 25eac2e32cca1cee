//go:build integration

package indexer_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/indexer"
)

// TestIndexerStartsBeforeItsTopic: the indexer starts before anyone created
// its topic, then records arrive; later the topic gains partitions. Every
// record is indexed. (On a fresh clone the indexer once joined its group
// before the topic existed, was assigned 0 partitions and indexed nothing.)
func TestIndexerStartsBeforeItsTopic(t *testing.T) {
	brokers := stacktest.Brokers(t)
	name := stacktest.UniqueName("indexer-order")
	topic := "hourglass.logs.raw." + name
	stacktest.DeleteTopicsOnCleanup(t, brokers, topic, topic+".dlq")
	es, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	ns := strings.ReplaceAll(strings.TrimPrefix(name, "indexer-order-"), "-", "")
	stream := "logs-" + indexer.Dataset + "-order" + ns
	ctx := context.Background()
	setup := indexer.SetupConfig{Template: name, Pattern: stream + "*", Policy: name, Retention: 24 * time.Hour,
		Replicas: 0, DataStream: stream, Priority: 300}
	_, err = indexer.Setup(ctx, es, setup)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, indexer.DeleteSetup(context.Background(), es, setup)) })

	cfg := indexer.DefaultConfig()
	cfg.Brokers = []string{brokers}
	cfg.Topic = topic
	cfg.Group = name
	cfg.DataStream = stream
	cfg.DLQTopic = topic + ".dlq"
	cfg.SessionTimeout = 6 * time.Second
	ix, err := indexer.New(cfg, es, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), prometheus.NewRegistry())
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ix.Run(rctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool { return stacktest.Partitions(ctx, brokers, topic) == topology.RawPartitions },
		30*time.Second, 100*time.Millisecond, "the indexer creates its topic before joining")
	stacktest.Produce(t, brokers, topic, append(stacktest.TrafficLines("tenant-a", "a", 300), stacktest.TrafficLines("tenant-b", "b", 200)...)...)
	stacktest.WaitCaughtUp(t, brokers, name, topic, 2*time.Minute)
	count := func() int64 {
		require.NoError(t, es.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{stream}}, "refresh", nil))
		var out struct{ Count int64 }
		require.NoError(t, es.Do(ctx, esapi.CountRequest{Index: []string{stream}}, "count", &out))
		return out.Count
	}
	require.EqualValues(t, 500, count())

	stacktest.AddPartitions(t, brokers, topic, topology.RawPartitions+2)
	stacktest.ProduceToPartition(t, brokers, topic, topology.RawPartitions, stacktest.TrafficLines("tenant-c", "c", 50)...)
	stacktest.ProduceToPartition(t, brokers, topic, topology.RawPartitions+1, stacktest.TrafficLines("tenant-d", "d", 50)...)
	stacktest.WaitCaughtUp(t, brokers, name, topic, 2*time.Minute)
	require.EqualValues(t, 600, count())
}
