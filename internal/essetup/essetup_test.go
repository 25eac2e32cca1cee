package essetup

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
	"github.com/hourglass-io/hourglass/internal/esclient"
)

func TestMetricMappingsAreTyped(t *testing.T) {
	c := catalogtest.Shipped(t)
	want := map[string]map[string]string{
		"avg_rtt":        {"avg_rtt_ms": "double", "max_rtt_ms": "double"},
		"request_rate":   {"requests": "long"},
		"error_rate":     {"error_ratio": "double", "errors": "long"},
		"latency":        {"duration_ms_p50": "double", "duration_ms_p99": "double", "avg_duration_ms": "double"},
		"bandwidth":      {"bytes_in": "long", "bytes_out": "long"},
		"unique_clients": {"clients": "long"},
	}
	for _, m := range c.Metrics {
		mp := MetricMapping(m)
		require.Equal(t, "strict", mp["dynamic"])
		props := mp["properties"].(map[string]any)
		require.Equal(t, "keyword", props["tenant"].(map[string]any)["type"])
		require.Equal(t, "long", props["samples"].(map[string]any)["type"])
		require.Equal(t, "date", props["computed_at"].(map[string]any)["type"])
		for f, typ := range want[m.Name] {
			require.Equal(t, typ, props[f].(map[string]any)["type"], "%s.%s", m.Name, f)
		}
		base := 0
		if len(m.Baselines) > 0 {
			base = 1 // the baseline object
		}
		require.Len(t, props, 5+len(m.Outputs())+base, m.Name) // metric, tenant, window, samples, computed_at
	}
}

func TestTemplates(t *testing.T) {
	c := catalogtest.Shipped(t)
	cfg := DefaultConfig()
	es := Templates(c, cfg, esclient.Elasticsearch)
	require.Len(t, es, len(c.Metrics)+2)
	lat := es[3]
	require.Equal(t, "hourglass-metrics-latency", lat.Name)
	require.Equal(t, []string{"hourglass-metrics-latency-*"}, lat.Body["index_patterns"])
	tpl := lat.Body["template"].(map[string]any)
	require.Contains(t, tpl["aliases"], "hourglass-metrics-latency")
	require.Equal(t, PolicyName, tpl["settings"].(map[string]any)["index.lifecycle.name"])
	osTpl := Templates(c, cfg, esclient.OpenSearch)
	require.NotContains(t, osTpl[0].Body["template"].(map[string]any)["settings"], "index.lifecycle.name",
		"OpenSearch attaches ISM policies through ism_template")
}

func TestRetentionPolicies(t *testing.T) {
	ilm := ILMPolicy(30 * 24 * time.Hour)["policy"].(map[string]any)["phases"].(map[string]any)
	require.Equal(t, "30d", ilm["delete"].(map[string]any)["min_age"])
	ism := ISMPolicy(30 * 24 * time.Hour)["policy"].(map[string]any)
	require.Equal(t, "hot", ism["default_state"])
	require.Contains(t, jsonOf(t, ism), `"min_index_age":"30d"`)
	require.Contains(t, jsonOf(t, ism), `"index_patterns":["hourglass-metrics-*","hourglass-late-*"]`)
	require.Error(t, Config{Shards: 0, Retention: time.Hour}.Validate())
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestBaselineMapping(t *testing.T) {
	c, err := catalog.Load("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	lat, ok := c.Metric("latency")
	require.True(t, ok)
	props := MetricMapping(lat)["properties"].(map[string]any)
	require.Len(t, props, 5+len(lat.Outputs())+1, "the baseline object besides the shipped fields")
	b := props["baseline"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, []string{"duration_ms_p95"}, keys(b))
	fields := b["duration_ms_p95"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, "boolean", fields["anomaly"].(map[string]any)["type"])
	require.Equal(t, "long", fields["samples"].(map[string]any)["type"])
	require.Equal(t, "double", fields["score"].(map[string]any)["type"])
	require.Len(t, fields, 7)
	bw, _ := c.Metric("bandwidth")
	require.NotContains(t, MetricMapping(bw)["properties"], "baseline")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The mapping has a type for every field catalog says the documents have,
// and no other (plus the baseline objects): one vocabulary, checked.
func TestMetricMappingCoversTheDocument(t *testing.T) {
	for _, file := range []string{"../../metrics-jobs/catalog.yaml",
		"../catalog/testdata/full.good.yaml"} {
		c, err := catalog.Load(file)
		require.NoError(t, err)
		for _, m := range c.Metrics {
			want := m.DocumentFields()
			if len(m.Baselines) > 0 {
				want = append(want, catalog.BaselineField)
			}
			require.ElementsMatch(t, want, keys(MetricMapping(m)["properties"].(map[string]any)), "%s: %s", file, m.Name)
		}
	}
}

// The late indices map only fields that catalog's late documents have.
func TestLateMappingNamesDocumentFields(t *testing.T) {
	c, err := catalog.Load("../catalog/testdata/full.good.yaml")
	require.NoError(t, err)
	m := c.Metrics[0]
	fields := append(m.LateDocumentFields(), m.OutOfRangeDocumentFields()...)
	require.Subset(t, fields, keys(LateProperties()))
	late := Templates(c, DefaultConfig(), esclient.OpenSearch)[len(c.Metrics)]
	require.Equal(t, []string{catalog.LatePrefix + "*"}, late.Body["index_patterns"])
	require.Equal(t, "hourglass-late-*", catalog.LateIndexPattern)
}

// The job-run index maps exactly the fields catalog says a run document has.
func TestJobRunsMappingIsTheCatalogsDocument(t *testing.T) {
	for _, tpl := range Templates(catalogtest.Shipped(t), DefaultConfig(), esclient.OpenSearch) {
		if tpl.Name != catalog.JobRunsIndex {
			continue
		}
		props := tpl.Body["template"].(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any)
		require.ElementsMatch(t, catalog.JobRunFields, keys(props))
		return
	}
	t.Fatal("no template for " + catalog.JobRunsIndex)
}
