//go:build integration

package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
	"github.com/hourglass-io/hourglass/internal/jobs"
	"github.com/hourglass-io/hourglass/internal/jobs/jobstest"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/router"
)

// stackEnv is one isolated pipeline: unique raw/DLQ/metric topics (the shipped
// catalog with every metric renamed <name>_<suffix>), router group, indices,
// templates and checkpoints, all removed when the test ends.
type stackEnv struct {
	brokers, esURL, raw, dlq, routerGroup, suffix string
	catalog                                       *catalog.Catalog
	catalogPath                                   string
	es                                            *esclient.Client
	jobsCfg                                       jobs.Config
	log                                           *slog.Logger
}

var nameLine = regexp.MustCompile(`(?m)^(  - name: )([a-z_]+)$`)

func newStackEnv(t *testing.T) *stackEnv {
	t.Helper()
	e := &stackEnv{brokers: stacktest.Brokers(t), esURL: stacktest.Get(t, "HOURGLASS_ES_URL")}
	e.suffix = strings.ReplaceAll(stacktest.UniqueName("j")[2:], "-", "")
	e.raw, e.dlq, e.routerGroup = "test.raw."+e.suffix, "test.dlq."+e.suffix, "test-router-"+e.suffix
	e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stacktest.CreateTopic(t, e.brokers, e.raw, 3)

	shipped, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte(nameLine.ReplaceAllString(string(shipped), "${1}${2}_"+e.suffix)), 0o644))
	e.catalogPath = path
	e.catalog, err = catalog.Load(path)
	require.NoError(t, err)
	var topics []string
	for _, tp := range e.catalog.Topics() {
		topics = append(topics, tp.Topic)
	}
	stacktest.DeleteTopicsOnCleanup(t, e.brokers, append(topics, e.dlq)...)

	e.es, err = esclient.New(esclient.Config{URLs: []string{e.esURL}})
	require.NoError(t, err)
	t.Cleanup(func() { e.cleanupES(t) })

	e.jobsCfg = jobstest.Config(t) // checkpoints on HDFS, as in production
	return e
}

// cleanupES removes the test metrics' indices, templates and job runs.
// Missing indices are ignored: a metric that saw no late record has no late
// index, and one missing index would fail the whole delete.
func (e *stackEnv) cleanupES(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ignore := true
	for _, m := range e.catalog.Metrics {
		if err := e.es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{catalog.Alias(m.Name) + "-*", catalog.LateIndex(m.Name)},
			IgnoreUnavailable: &ignore}, "delete test indices", nil); err != nil {
			t.Logf("cleanup: %v", err)
		}
		_ = e.es.Do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: catalog.Alias(m.Name)}, "delete test template", nil)
	}
	q := `{"query":{"wildcard":{"metric":{"value":"*_` + e.suffix + `"}}}}`
	_ = e.es.Do(ctx, esapi.DeleteByQueryRequest{Index: []string{essetup.JobRunsIndex}, Body: strings.NewReader(q)},
		"delete test job runs", nil)
}

// setupES runs `hourglass es setup` for the test catalog (0 replicas: one node).
func (e *stackEnv) setupES(t *testing.T) essetup.Report {
	cfg := essetup.DefaultConfig()
	cfg.Replicas = 0
	rep, err := essetup.Setup(context.Background(), e.es, e.catalog, cfg, e.log)
	require.NoError(t, err)
	return rep
}

// startRouter runs a router in-process until the test ends.
func (e *stackEnv) startRouter(t *testing.T, catalogPath string) {
	cfg := router.DefaultConfig()
	cfg.Brokers = []string{e.brokers}
	cfg.CatalogPath = catalogPath
	cfg.Group, cfg.SourceTopic, cfg.DLQTopic = e.routerGroup, e.raw, e.dlq
	// The tests' event times are fixed (2026-01-01, for exact ground truth)
	// while Kafka stamps records now: accept any past.
	cfg.TimeBounds.MaxPast = 100 * 365 * 24 * time.Hour
	// The generated traffic is dated months ago: routing it is a backfill,
	// which an operator runs with a raised --max-past.
	cfg.TimeBounds.MaxPast = 5 * 365 * 24 * time.Hour
	r, err := router.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

// produce writes records to the raw topic, keyed by tenant.
func (e *stackEnv) produce(t *testing.T, recs []record.Record) {
	msgs := make([]kafka.Message, len(recs))
	for i := range recs {
		b, err := recs[i].MarshalJSON()
		require.NoError(t, err)
		msgs[i] = kafka.Message{Key: []byte(recs[i].Tenant), Value: b}
	}
	stacktest.Produce(t, e.brokers, e.raw, msgs...)
}

// waitDrained waits until the router has routed everything and every metric
// job's consumer group has committed the end of its topic.
func (e *stackEnv) waitDrained(t *testing.T, timeout time.Duration) {
	stacktest.WaitCaughtUp(t, e.brokers, e.routerGroup, e.raw, timeout)
	for _, tp := range e.catalog.Topics() {
		stacktest.WaitCaughtUp(t, e.brokers, tp.ConsumerGroup, tp.Topic, timeout)
	}
}

// searchAll returns every document of index (a pattern or alias) by _id.
func (e *stackEnv) searchAll(t *testing.T, index string) map[string]map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, e.es.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{index}}, "refresh "+index, nil))
	var res struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
			Hits  []struct {
				ID     string         `json:"_id"`
				Index  string         `json:"_index"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	size := 10000
	track := true
	require.NoError(t, e.es.Do(ctx, esapi.SearchRequest{Index: []string{index}, Size: &size, TrackTotalHits: track,
		Body: strings.NewReader(`{"query":{"match_all":{}}}`)}, "search "+index, &res))
	require.Less(t, res.Hits.Total.Value, size, "more documents than one page")
	out := map[string]map[string]any{}
	for _, h := range res.Hits.Hits {
		h.Source["_index"] = h.Index
		out[h.ID] = h.Source
	}
	return out
}

// consumerGroupLag runs Kafka's own tool (kafka-consumer-groups --describe)
// and returns its output and the LAG column of every partition.
func consumerGroupLag(t *testing.T, brokers, group string) (string, map[string]int64) {
	log4j := filepath.Join(t.TempDir(), "log4j.properties")
	require.NoError(t, os.WriteFile(log4j, []byte("log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"), 0o644))
	cmd := exec.Command("java", "-Xmx192m", "-XX:TieredStopAtLevel=1", "-Dlog4j.configuration=file:"+log4j,
		"-cp", stacktest.Get(t, "HOURGLASS_KAFKA_CLASSPATH"),
		"org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", brokers, "--describe", "--group", group)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	lags := map[string]int64{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == group {
			lag, err := strconv.ParseInt(f[5], 10, 64)
			require.NoError(t, err, line)
			lags[f[1]+"/"+f[2]] = lag
		}
	}
	return stdout.String(), lags
}

// runBatch runs batch mode for one metric and hour.
func (e *stackEnv) runBatch(t *testing.T, metric catalog.Metric, hour time.Time, extra ...string) {
	var out bytes.Buffer
	err := jobs.RunBatch(context.Background(), e.jobsCfg, catalog.SparkSpec(metric), hour, &out, extra...)
	require.NoError(t, err, tail(out.String(), 4000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = fmt.Sprint
