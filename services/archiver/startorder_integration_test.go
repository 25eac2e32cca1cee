//go:build integration

package archiver_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/archiver"
)

// TestArchiverStartsBeforeItsTopic: the archiver starts before anyone
// created its topic (a fresh cluster), then records arrive; later the topic
// gains partitions. Every record is archived once, by count and by id.
// (On a fresh clone the archiver once joined its group before the topic
// existed, was assigned 0 partitions and never archived anything.)
func TestArchiverStartsBeforeItsTopic(t *testing.T) {
	brokers := stacktest.Brokers(t)
	name := stacktest.UniqueName("archiver-order")
	topic := "hourglass.logs.raw." + name
	stacktest.DeleteTopicsOnCleanup(t, brokers, topic)
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)

	cfg := archiver.DefaultConfig()
	cfg.Brokers = []string{brokers}
	cfg.Topic = topic
	cfg.Group = name
	cfg.MaxFileAge = 300 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	a, err := archiver.New(cfg, fsys, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	// The archiver itself creates its topic, with the topology's shape.
	require.Eventually(t, func() bool { return stacktest.Partitions(ctx, brokers, topic) == topology.RawPartitions },
		30*time.Second, 100*time.Millisecond, "the archiver creates its topic before joining")
	first := stacktest.TrafficLines("tenant-a", "first", 300)
	stacktest.Produce(t, brokers, topic, append(first, stacktest.TrafficLines("tenant-b", "other", 200)...)...)
	stacktest.WaitCaughtUp(t, brokers, name, topic, 2*time.Minute)
	require.Len(t, archived(t, fsys), 500)

	// Partitions added while it runs are picked up by a rebalance.
	stacktest.AddPartitions(t, brokers, topic, topology.RawPartitions+2)
	stacktest.ProduceToPartition(t, brokers, topic, topology.RawPartitions, stacktest.TrafficLines("tenant-c", "late-part", 50)...)
	stacktest.ProduceToPartition(t, brokers, topic, topology.RawPartitions+1, stacktest.TrafficLines("tenant-d", "late-part-2", 50)...)
	stacktest.WaitCaughtUp(t, brokers, name, topic, 2*time.Minute)
	got := archived(t, fsys)
	require.Len(t, got, 600)
	for id, n := range got {
		require.Equal(t, 1, n, "request %s archived once", id)
	}
}
