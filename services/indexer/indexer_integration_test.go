//go:build integration

package indexer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
	"github.com/hourglass-io/hourglass/services/indexer"
)

// TestIndexerRoundTripAndReplay: generated records → Kafka → indexer →
// OpenSearch data stream: the count per tenant equals what was produced;
// a full replay (a second group from the first offset) adds no document.
func TestIndexerRoundTripAndReplay(t *testing.T) {
	brokers := stacktest.Brokers(t)
	name := stacktest.UniqueName("indexer-it")
	topic := "hourglass.logs.raw." + name
	stacktest.CreateTopic(t, brokers, topic, 3)
	es, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	ns := strings.ReplaceAll(strings.TrimPrefix(name, "indexer-it-"), "-", "")
	stream := "logs-" + indexer.Dataset + "-it" + ns
	// Priority 300: the test's one-namespace template must outrank the default
	// (logs-hourglass.traffic-*, 200) that `hourglass es setup` may have left.
	setup := indexer.SetupConfig{Template: name, Pattern: stream + "*", Policy: name, Retention: 7 * 24 * time.Hour,
		Replicas: 0, DataStream: stream, Priority: 300}
	ctx := context.Background()
	res, err := indexer.Setup(ctx, es, setup)
	require.NoError(t, err)
	_, err = indexer.Setup(ctx, es, setup)
	require.NoError(t, err, "setup is idempotent")
	t.Logf("setup on %s: retention by %q %s", res.Flavor, res.Retention, res.Warning)
	t.Cleanup(func() { require.NoError(t, indexer.DeleteSetup(context.Background(), es, setup)) })

	g := gen.New(gen.Config{Seed: 5, Tenants: 4, Start: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Rate: 5, Malformed: 0.01})
	want := map[string]int64{}
	var msgs []kafka.Message
	const n = 20_000
	for range n {
		line, _ := g.NextLine()
		key := "bad"
		if rec, _, err := record.Decode(line); err == nil {
			want[rec.Tenant]++
			key = rec.Tenant
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: line})
	}
	stacktest.Produce(t, brokers, topic, msgs...)

	run := func(group string) *prometheus.Registry {
		cfg := indexer.DefaultConfig()
		cfg.Brokers = []string{brokers}
		cfg.Topic = topic
		cfg.Group = group
		cfg.DataStream = stream
		cfg.DLQTopic = topic + ".dlq"
		cfg.SessionTimeout = 6 * time.Second
		reg := prometheus.NewRegistry()
		ix, err := indexer.New(cfg, es, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ix.Run(rctx) }()
		began := time.Now()
		stacktest.WaitCaughtUp(t, brokers, group, topic, 3*time.Minute)
		t.Logf("group %s caught up on %d records in %s", group, n, time.Since(began).Round(time.Millisecond))
		cancel()
		require.NoError(t, <-done)
		return reg
	}
	countPerTenant := func() map[string]int64 {
		require.NoError(t, es.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{stream}}, "refresh", nil))
		got := map[string]int64{}
		for tenant := range want {
			var out struct{ Count int64 }
			body := fmt.Sprintf(`{"query":{"term":{"organization.id":%q}}}`, tenant)
			require.NoError(t, es.Do(ctx, esapi.CountRequest{Index: []string{stream}, Body: strings.NewReader(body)}, "count", &out))
			got[tenant] = out.Count
		}
		return got
	}

	reg := run(name + "-a")
	require.Equal(t, want, countPerTenant(), "documents per tenant")
	var valid float64
	for _, c := range want {
		valid += float64(c)
	}
	require.Equal(t, valid, telemetrytest.Value(t, reg, "hourglass_indexer_documents_total", "result", "created"))

	// A replay of the whole topic (a new group starts at the first offset).
	reg = run(name + "-b")
	require.Equal(t, want, countPerTenant(), "a replay adds no document")
	require.Equal(t, valid, telemetrytest.Value(t, reg, "hourglass_indexer_documents_total", "result", "duplicate"))

	// ECS fields are searchable with their types.
	var out struct{ Count int64 }
	require.NoError(t, es.Do(ctx, esapi.CountRequest{Index: []string{stream},
		Body: strings.NewReader(`{"query":{"bool":{"filter":[{"range":{"http.response.status_code":{"gte":500}}},{"range":{"event.duration":{"gte":1000000}}},{"term":{"client.ip":"10.0.0.0/8"}}]}}}`)},
		"count 5xx", &out))
	require.Positive(t, out.Count)
}
