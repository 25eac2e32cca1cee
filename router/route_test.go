package router

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/gen"
)

// A batch routed in parallel chunks gives the output of routing it whole:
// the same records, in the same order, with the same counts.
func TestParallelRoutingEqualsSequential(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // 4 chunks whatever the machine
	cfg := DefaultConfig()
	cfg.CatalogPath = "../metrics-jobs/catalog.yaml"
	cfg.Brokers = []string{"127.0.0.1:1"} // never dialled
	cfg.TimeBounds.MaxPast = 100 * 365 * 24 * time.Hour
	r, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)

	g := gen.New(gen.Config{Seed: 5, Tenants: 7, Start: time.Now().Add(-time.Hour), Rate: 10, Malformed: 0.03})
	batch := make([]kafka.Message, 3001) // not a multiple of the chunk count
	for i := range batch {
		line, _ := g.NextLine()
		batch[i] = kafka.Message{Partition: 1, Offset: int64(i), Value: line, Time: time.Now()}
	}
	whole := r.routeChunk(*r.routes.Load(), batch, time.Now())
	split := r.routeBatch(batch)

	require.Len(t, split.batch, len(batch))
	require.Len(t, split.out, len(whole.out))
	for i := range whole.out {
		w, s := whole.out[i], split.out[i]
		require.Equal(t, w.Topic, s.Topic, "record %d", i)
		require.Equal(t, string(w.Key), string(s.Key), "record %d", i)
		if w.Topic != cfg.DLQTopic { // DLQ records carry the time they were refused
			require.Equal(t, string(w.Value), string(s.Value), "record %d", i)
		}
	}
	require.Equal(t, whole.perMetric, split.perMetric)
	require.Equal(t, whole.filtered, split.filtered)
	require.Equal(t, whole.dlqs, split.dlqs)
	require.NotEmpty(t, whole.dlqs, "the malformed records reached the DLQ")
}
