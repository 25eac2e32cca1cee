//go:build integration

package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/router"
)

func TestRouterFanOutExact(t *testing.T) {
	e := newEnv(t)
	valid, invalid := e.generate(t, 42, 50_000, 0.01)
	reg := prometheus.NewRegistry()
	e.startRouter(t, reg)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, 3*time.Minute)

	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	want := expected(t, c, valid)
	require.Len(t, want, 6)
	for topic, lines := range want {
		require.NotEmpty(t, lines, topic)
		got := topicLines(t, e.brokers, topic)
		require.Equal(t, len(lines), len(got), "record count in %s", topic)
		require.Equal(t, lines, got, "records in %s", topic)
	}
	// Every metric's partitioning is by tenant: a tenant's records share a partition.
	for topic := range want {
		part := map[string]int{}
		for _, m := range stacktest.ReadAll(t, e.brokers, topic) {
			if p, ok := part[string(m.Key)]; ok {
				require.Equal(t, p, m.Partition, "tenant %s in two partitions of %s", m.Key, topic)
			}
			part[string(m.Key)] = m.Partition
		}
	}

	dead := stacktest.ReadAll(t, e.brokers, e.dlq)
	require.Len(t, dead, len(invalid))
	var gotInvalid, wantInvalid []string
	reasons := map[string]int{}
	for _, km := range dead {
		m, err := dlq.Parse(km)
		require.NoError(t, err)
		gotInvalid = append(gotInvalid, string(m.Value))
		require.NotEmpty(t, m.Reason)
		reasons[string(m.Reason)]++
		require.Equal(t, dlq.StageRouter, m.Stage)
		require.Equal(t, e.raw, m.Source.Topic)
		require.NotEmpty(t, m.Error)
	}
	for _, l := range invalid {
		wantInvalid = append(wantInvalid, string(l))
	}
	slices.Sort(gotInvalid)
	slices.Sort(wantInvalid)
	require.Equal(t, wantInvalid, gotInvalid, "the DLQ holds exactly the invalid records, unchanged")
	for reason, n := range reasons {
		require.Equal(t, float64(n), telemetrytest.Value(t, reg, "hourglass_router_dlq_records_total", "reason", reason))
	}
	require.Equal(t, 50_000.0, telemetrytest.Sum(t, reg, "hourglass_router_records_in_total"))
	// Every valid record is routed to a metric or counted as left out by its filter.
	filteredAny := false
	for _, mt := range c.Metrics {
		out := telemetrytest.Value(t, reg, "hourglass_router_records_out_total", "metric", mt.Name)
		filtered := telemetrytest.Value(t, reg, "hourglass_router_records_filtered_total", "metric", mt.Name)
		require.Equal(t, float64(len(want[topology.MetricTopic(mt.Name)])), out, "routed to %s", mt.Name)
		require.Equal(t, float64(len(valid)), out+filtered, "routed to %s or filtered out", mt.Name)
		filteredAny = filteredAny || (len(mt.Filter) > 0 && filtered > 0)
	}
	require.True(t, filteredAny, "a metric with a filter counted the records it left out")
	t.Logf("50000 records: %d valid, %d to the DLQ by reason %v", len(valid), len(invalid), reasons)
}

func TestRouterCatalogReload(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	e.startRouter(t, reg)
	valid1, _ := e.generate(t, 1, 2000, 0)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, time.Minute)

	// Add a metric: server errors per tenant.
	shipped, err := os.ReadFile("../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	extra := `
  - name: server_errors
    description: Server errors.
    filter: [{field: status, op: gte, value: 500}]
    fields: [status, path]
    partitions: 2
    aggregations: [{name: n, fn: count}]
`
	e.writeCatalog(t, string(shipped)+extra)
	newTopic := "hourglass.metric.server_errors_" + e.suffix
	stacktest.DeleteTopicsOnCleanup(t, e.brokers, newTopic)
	require.Eventually(t, func() bool {
		return telemetrytest.Value(t, reg, "hourglass_router_catalog_reloads_total", "result", "ok") == 1
	}, 30*time.Second, 50*time.Millisecond)
	ends, err := stacktest.EndOffsets(context.Background(), e.brokers, newTopic)
	require.NoError(t, err, "the new metric's topic exists after one reload")
	require.Len(t, ends, 2, "with the catalog's partition count")

	valid2, _ := e.generate(t, 2, 2000, 0)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, time.Minute)
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	require.Equal(t, expected(t, c, valid2)[newTopic], topicLines(t, e.brokers, newTopic),
		"the new metric receives exactly the matching records produced after the reload")

	// A broken edit is refused; routing goes on with the catalog in force.
	require.NoError(t, os.WriteFile(e.catalogPath, []byte(string(shipped)+extra+"    bogus_key: 1\n"), 0o644))
	require.Eventually(t, func() bool {
		return telemetrytest.Value(t, reg, "hourglass_router_catalog_reloads_total", "result", "error") >= 1
	}, 30*time.Second, 50*time.Millisecond)
	valid3, _ := e.generate(t, 3, 2000, 0)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, time.Minute)
	all := append(append(slices.Clone(valid1), valid2...), valid3...)
	for topic, lines := range expected(t, c, all) {
		if topic == newTopic {
			lines = expected(t, c, append(slices.Clone(valid2), valid3...))[newTopic]
		}
		require.Equal(t, lines, topicLines(t, e.brokers, topic), "routing continues unchanged in %s", topic)
	}
	require.Equal(t, 7.0, telemetrytest.Sum(t, reg, "hourglass_router_metrics"))
}

// TestRouterSIGKILL kills the router process mid-stream, restarts it, and
// checks that no record is missing from any metric topic.
func TestRouterSIGKILL(t *testing.T) {
	e := newEnv(t)
	bin := stacktest.Binary(t)
	valid, _ := e.generate(t, 9, 50_000, 0)

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "router", "--brokers", e.brokers, "--catalog", e.catalogPath,
			"--group", e.group, "--source-topic", e.raw, "--dlq-topic", e.dlq,
			"--batch-size", "500", "--session-timeout", "6s", "--listen-addr", "127.0.0.1:0", "--log-level", "warn",
			"--max-past", "43800h") // the generated traffic is dated 2026-01: a backfill
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	var kills int
	for kills < 3 {
		cmd := start()
		// Wait until this run has committed progress, then kill it without warning.
		before := committedTotal(t, e)
		require.Eventually(t, func() bool { return committedTotal(t, e) > before }, time.Minute, 5*time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		kills++
		if committedTotal(t, e) >= 50_000 {
			break
		}
	}
	cmd := start()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, 3*time.Minute)

	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	var dups int
	for topic, want := range expected(t, c, valid) {
		got := topicLines(t, e.brokers, topic)
		counts := map[string]int{}
		for _, l := range got {
			counts[l]++
		}
		for _, l := range want {
			require.Positive(t, counts[l], "record missing from %s after %d kills: %s", topic, kills, l)
			counts[l]--
		}
		for _, n := range counts {
			dups += n
		}
	}
	t.Logf("after %d SIGKILLs: no record missing; %d duplicate records across the metric topics (at-least-once)", kills, dups)
	fmt.Fprintf(os.Stderr, "ROUTER-SIGKILL kills=%d duplicates=%d\n", kills, dups)
}

// TestRouterSIGTERMDoesNotDuplicate stops the router with SIGTERM while it
// routes, several times, then lets a last run finish: every metric topic holds
// each expected record exactly once. A batch is finished, never abandoned
// half-produced, on a graceful stop.
func TestRouterSIGTERMDoesNotDuplicate(t *testing.T) {
	e := newEnv(t)
	bin := stacktest.Binary(t)
	valid, _ := e.generate(t, 19, 50_000, 0)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "router", "--brokers", e.brokers, "--catalog", e.catalogPath,
			"--group", e.group, "--source-topic", e.raw, "--dlq-topic", e.dlq,
			"--batch-size", "2000", "--session-timeout", "6s", "--listen-addr", "127.0.0.1:0", "--log-level", "warn",
			"--max-past", "43800h")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	for stops := 0; stops < 3 && committedTotal(t, e) < 50_000; stops++ {
		cmd := start()
		before := committedTotal(t, e)
		require.Eventually(t, func() bool { return committedTotal(t, e) > before }, time.Minute, 5*time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait(), "a graceful stop exits 0")
	}
	cmd := start()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, 3*time.Minute)

	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	for topic, want := range expected(t, c, valid) {
		got := topicLines(t, e.brokers, topic)
		slices.Sort(got)
		require.Equal(t, len(want), len(got), "records in %s after SIGTERMs: none missing, none twice", topic)
		require.Equal(t, want, got, topic)
	}
}

// TestRouterRejectsOutOfRangeEventTime: records whose event time is too far
// after (or before) their Kafka timestamp go to the DLQ with reason
// out_of_range; the others of the same batch are routed.
func TestRouterRejectsOutOfRangeEventTime(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	line := func(id string, ts time.Time) kafka.Message {
		return kafka.Message{Key: []byte("tenant-a"), Time: now, Value: []byte(fmt.Sprintf(
			`{"timestamp":%q,"tenant":"tenant-a","request_id":%q,"method":"GET","status":200,"duration_ms":3,"rtt_ms":1,"bytes_out":5,"client_ip":"10.0.0.1"}`,
			ts.Format(time.RFC3339Nano), id))}
	}
	stacktest.Produce(t, e.brokers, e.raw,
		line("future", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)),
		line("edge-future", now.Add(4*time.Minute)),
		line("ok", now),
		line("past", now.Add(-8*24*time.Hour)),
	)
	cfg := e.config()
	cfg.TimeBounds = record.DefaultTimeBounds()
	r, err := router.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.raw, time.Minute)

	reasons := map[string]string{}
	for _, m := range stacktest.ReadAll(t, e.brokers, e.dlq) {
		var rec struct {
			RequestID string `json:"request_id"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &rec))
		dm, err := dlq.Parse(m)
		require.NoError(t, err)
		reasons[rec.RequestID] = string(dm.Reason)
	}
	require.Equal(t, map[string]string{"future": "out_of_range", "past": "out_of_range"}, reasons)
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	for _, tp := range c.Topics() {
		if !strings.HasPrefix(tp.Topic, "hourglass.metric.request_rate") {
			continue
		}
		var ids []string
		for _, m := range stacktest.ReadAll(t, e.brokers, tp.Topic) {
			ids = append(ids, string(m.Value))
		}
		require.Len(t, ids, 2, "ok and edge-future routed to %s: %v", tp.Topic, ids)
	}
}
