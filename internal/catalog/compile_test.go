package catalog

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/<name>, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run `go test ./internal/catalog -update` to create it")
	require.Equal(t, string(want), string(got), "golden file %s differs; rerun with -update if the change is intended", path)
}

func TestSparkSpecsGolden(t *testing.T) {
	for _, file := range []string{shipped, "testdata/full.good.yaml"} {
		c, err := Load(file)
		require.NoError(t, err)
		for _, m := range c.Metrics {
			b, err := MarshalSpec(SparkSpec(m))
			require.NoError(t, err)
			golden(t, "spark-"+m.Name+".json", b)
		}
	}
}

func mustParse(t *testing.T, y string) *Catalog {
	t.Helper()
	c, err := Parse([]byte(y))
	require.NoError(t, err)
	return c
}

func TestCompileFilter(t *testing.T) {
	rtt := 5.0
	base := record.Record{Timestamp: time.Now(), Tenant: "a", Method: "GET", Status: 503,
		Path: "/api/x", DurationMS: 1500, RTTMS: &rtt, Host: "h1", BytesOut: 10}
	cases := []struct {
		filter string
		mutate func(*record.Record)
		want   bool
	}{
		{`[]`, nil, true},
		{`[{field: rtt_ms, op: exists}]`, nil, true},
		{`[{field: rtt_ms, op: exists}]`, func(r *record.Record) { r.RTTMS = nil }, false},
		{`[{field: rtt_ms, op: ne, value: 1}]`, func(r *record.Record) { r.RTTMS = nil }, true},
		{`[{field: status, op: gte, value: 500}]`, nil, true},
		{`[{field: status, op: gte, value: 500}]`, func(r *record.Record) { r.Status = 499 }, false},
		{`[{field: status, op: lt, value: 503}]`, nil, false},
		{`[{field: status, op: lte, value: 503}]`, nil, true},
		{`[{field: status, op: in, values: [502, 503]}]`, nil, true},
		{`[{field: status, op: not_in, values: [502, 503]}]`, nil, false},
		{`[{field: path, op: prefix, value: /api/}]`, nil, true},
		{`[{field: path, op: prefix, value: /api/}]`, func(r *record.Record) { r.Path = "/web" }, false},
		{`[{field: host, op: eq, value: h1}, {field: duration_ms, op: gt, value: 1000}]`, nil, true},
		{`[{field: host, op: eq, value: h1}, {field: duration_ms, op: gt, value: 2000}]`, nil, false},
		{`[{field: host, op: in, values: [h2, h3]}]`, nil, false},
		{`[{field: client_ip, op: exists}]`, nil, false},
		{`[{field: client_ip, op: not_in, values: [1.2.3.4]}]`, nil, true},
		{`[{field: bytes_out, op: eq, value: 10}]`, nil, true},
	}
	for _, tc := range cases {
		c := mustParse(t, "metrics:\n  - name: m\n    description: d\n    filter: "+tc.filter+"\n    aggregations: [{name: n, fn: count}]\n")
		r := base
		if tc.mutate != nil {
			tc.mutate(&r)
		}
		require.Equal(t, tc.want, c.Routes()[0].Match(&r), "filter %s", tc.filter)
	}
}

func TestRoutesProjectAndName(t *testing.T) {
	c, err := Load(shipped)
	require.NoError(t, err)
	routes := c.Routes()
	require.Len(t, routes, len(c.Metrics))
	bw := routes[4]
	require.Equal(t, "bandwidth", bw.Metric)
	require.Equal(t, "hourglass.metric.bandwidth", bw.Topic)
	require.Equal(t, 3, bw.Partitions)
	r := record.Record{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Tenant: "t", Method: "GET",
		Status: 200, BytesIn: 7, BytesOut: 9, Host: "not projected"}
	require.JSONEq(t, `{"timestamp":"2026-01-02T03:04:05Z","tenant":"t","bytes_in":7,"bytes_out":9}`,
		string(bw.Project(nil, &r)))
}

func TestDocIDStable(t *testing.T) {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	id := DocID("avg_rtt", time.Minute, start, "acme")
	require.Len(t, id, 64)
	require.Equal(t, id, DocID("avg_rtt", time.Minute, start.In(time.FixedZone("x", 3600)), "acme"), "zone-independent")
	require.NotEqual(t, id, DocID("avg_rtt", time.Hour, start, "acme"))
	require.NotEqual(t, id, DocID("avg_rtt", time.Minute, start, "acme2"))
	require.Equal(t, "hourglass-metrics-avg_rtt-2026.11", IndexName("avg_rtt", start))
}
