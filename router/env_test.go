//go:build integration || bench

package router_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// testEnv is one isolated router setup: unique raw, DLQ and metric topics
// (the shipped catalog with every metric renamed <name>_<suffix>) and group.
type testEnv struct {
	brokers, raw, dlq, group, catalogPath, suffix string
}

var nameLine = regexp.MustCompile(`(?m)^(  - name: )([a-z_]+)$`)

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{brokers: stacktest.Brokers(t)}
	e.suffix = strings.ReplaceAll(stacktest.UniqueName("t")[2:], "-", "")
	e.raw = "test.raw." + e.suffix
	e.dlq = "test.dlq." + e.suffix
	e.group = "test-router-" + e.suffix
	stacktest.CreateTopic(t, e.brokers, e.raw, 3)
	shipped, err := os.ReadFile("../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	e.catalogPath = filepath.Join(t.TempDir(), "catalog.yaml")
	e.writeCatalog(t, string(shipped))
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	var topics []string
	for _, tp := range c.Topics() {
		topics = append(topics, tp.Topic)
	}
	stacktest.DeleteTopicsOnCleanup(t, e.brokers, append(topics, e.dlq)...)
	return e
}

// writeCatalog writes a catalog with every metric name suffixed.
func (e *testEnv) writeCatalog(t *testing.T, yaml string) {
	t.Helper()
	yaml = nameLine.ReplaceAllString(yaml, "${1}${2}_"+e.suffix)
	tmp := e.catalogPath + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(yaml), 0o644))
	require.NoError(t, os.Rename(tmp, e.catalogPath)) // atomic, as an editor or ConfigMap update does
}

func (e *testEnv) config() router.Config {
	cfg := router.DefaultConfig()
	cfg.Brokers = []string{e.brokers}
	cfg.CatalogPath = e.catalogPath
	cfg.Group = e.group
	cfg.SourceTopic = e.raw
	cfg.DLQTopic = e.dlq
	cfg.ReloadInterval = 200 * time.Millisecond
	// The generated traffic is dated months ago: routing it is a backfill,
	// which an operator runs with a raised --max-past.
	cfg.TimeBounds.MaxPast = 5 * 365 * 24 * time.Hour
	return cfg
}

// startRouter runs a router in-process until the test ends.
func (e *testEnv) startRouter(t *testing.T, reg prometheus.Registerer) {
	t.Helper()
	r, err := router.New(e.config(), slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// generate produces n generated lines (with a malformed share) to the raw
// topic and returns the valid records and the invalid lines.
// generate writes n generated records (a share malformed) to the raw topic:
// every other valid one as ingress writes it (canonical, marked with
// topology.CanonicalMark), the others unmarked as Fluentd relays a node's
// lines, so both of the router's decode paths run; markAll marks every
// valid record (the bench: ingress's share of a production raw topic).
func (e *testEnv) generate(t *testing.T, seed uint64, n int, malformed float64, markAll ...bool) ([]record.Record, [][]byte) {
	t.Helper()
	g := gen.New(gen.Config{Seed: seed, Tenants: 5, Malformed: malformed})
	var valid []record.Record
	var invalid [][]byte
	msgs := make([]kafka.Message, 0, n)
	for range n {
		line, ok := g.NextLine()
		key := "unknown"
		var headers []kafka.Header
		if ok {
			rec, _, err := record.Decode(line)
			require.NoError(t, err)
			valid = append(valid, rec)
			key = rec.Tenant
			if len(valid)%2 == 0 || len(markAll) > 0 && markAll[0] {
				line, headers = rec.AppendJSON(nil), []kafka.Header{topology.CanonicalMark()}
			}
		} else {
			invalid = append(invalid, line)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: line, Headers: headers})
	}
	stacktest.Produce(t, e.brokers, e.raw, msgs...)
	return valid, invalid
}

// expected returns, per metric topic, the sorted "key\tvalue" lines the Go
// predicates select from recs.
func expected(t *testing.T, c *catalog.Catalog, recs []record.Record) map[string][]string {
	out := map[string][]string{}
	for _, rt := range c.Routes() {
		lines := []string{}
		for i := range recs {
			if rt.Match(&recs[i]) {
				lines = append(lines, recs[i].Tenant+"\t"+string(rt.Project(nil, &recs[i])))
			}
		}
		slices.Sort(lines)
		out[rt.Topic] = lines
	}
	return out
}

func topicLines(t *testing.T, brokers, topic string) []string {
	lines := []string{}
	for _, m := range stacktest.ReadAll(t, brokers, topic) {
		lines = append(lines, string(m.Key)+"\t"+string(m.Value))
	}
	slices.Sort(lines)
	return lines
}

func committedTotal(t *testing.T, e *testEnv) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := stacktest.CommittedTotal(ctx, e.brokers, e.group, e.raw, 3)
	if err != nil {
		return 0
	}
	return n
}
