package kibana

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
)

var update = flag.Bool("update", false, "rewrite kibana/saved-objects.ndjson")

const golden = "../../kibana/saved-objects.ndjson"

// templateSchema is the schema of the index templates es setup installs.
func templateSchema(c *catalog.Catalog) Schema {
	return SchemaFromTemplates(essetup.Templates(c, essetup.DefaultConfig(), esclient.Elasticsearch))
}

func TestGoldenSavedObjects(t *testing.T) {
	c := catalogtest.Shipped(t)
	objs, err := Render(c, Options{})
	require.NoError(t, err)
	got, err := MarshalNDJSON(objs)
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./internal/kibana -update")
	require.Equal(t, string(want), string(got),
		"kibana/saved-objects.ndjson is stale: go test ./internal/kibana -update (or hourglass catalog render kibana > kibana/saved-objects.ndjson)")
}

func TestGoldenFileValidates(t *testing.T) {
	c := catalogtest.Shipped(t)
	data, err := os.ReadFile(golden)
	require.NoError(t, err)
	objs, err := ParseNDJSON(data)
	require.NoError(t, err)
	require.NoError(t, Validate(objs, templateSchema(c)))
	require.Equal(t, MetricSchema(c)[catalog.Alias("latency")], templateSchema(c)[catalog.Alias("latency")])
}

// The dashboard covers what customers asked for: every field named here is
// charted by some visualization on the dashboard.
func TestDashboardCoversTheCustomerMetrics(t *testing.T) {
	objs, err := Render(catalogtest.Shipped(t), Options{})
	require.NoError(t, err)
	charted := map[string]string{} // field -> aggregation
	var dash Object
	for _, o := range objs {
		if o.Type == TypeDashboard {
			dash = o
		}
		if o.Type != TypeVisualization {
			continue
		}
		var vis struct {
			Type string `json:"type"`
			Aggs []struct {
				Type   string         `json:"type"`
				Params map[string]any `json:"params"`
			} `json:"aggs"`
		}
		require.NoError(t, json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vis))
		for _, a := range vis.Aggs {
			if f, ok := a.Params["field"].(string); ok && a.Type != "date_histogram" {
				charted[f] = a.Type
			}
		}
	}
	require.Equal(t, map[string]string{
		"avg_rtt_ms": "avg", "max_rtt_ms": "max", // average RTT over time
		"requests":    "avg",                  // request rate (per 1m window)
		"error_ratio": "avg", "errors": "avg", // error rate
		"duration_ms_p50": "avg", "duration_ms_p95": "avg", "duration_ms_p99": "avg", "avg_duration_ms": "avg", // latency
		"bytes_in": "sum", "bytes_out": "sum", // bandwidth
		"clients": "max", // unique clients: never added up
	}, charted)
	var panels []map[string]any
	require.NoError(t, json.Unmarshal([]byte(dash.Attributes["panelsJSON"].(string)), &panels))
	require.Len(t, panels, 6+1+2, "one chart per metric, the freshness panel and the two band panels")
	require.Contains(t, dash.References, Reference{Name: "1:panel_1", Type: TypeVisualization, ID: "hourglass-vis-freshness"})
}

func TestNewMetricGetsItsPanel(t *testing.T) {
	shippedYAML, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	extra := string(shippedYAML) + `
  - name: slow_api
    description: Requests to /api slower than one second.
    filter:
      - {field: path, op: prefix, value: /api}
    fields: [duration_ms]
    windows: [5m, 1h]
    aggregations:
      - {name: slow, fn: count, where: [{field: duration_ms, op: gt, value: 1000}]}
      - {name: slowest_ms, fn: max, field: duration_ms}
`
	c, err := catalog.Parse([]byte(extra))
	require.NoError(t, err)
	objs, err := Render(c, Options{})
	require.NoError(t, err)
	require.NoError(t, Validate(objs, templateSchema(c)))
	ids := map[string]bool{}
	for _, o := range objs {
		ids[o.ID] = true
	}
	require.True(t, ids["hourglass-dv-slow_api"] && ids["hourglass-vis-slow_api"], "data view and chart of the new metric")
	vis := find(t, objs, "hourglass-vis-slow_api")
	require.Contains(t, vis.Attributes["kibanaSavedObjectMeta"].(map[string]any)["searchSourceJSON"], `"query":"5m"`,
		"the chart shows the metric's smallest window")
	fresh := find(t, objs, "hourglass-vis-freshness")
	require.Contains(t, fresh.Attributes["visState"], `hourglass-metrics-slow_api`)
}

func TestTenantRendering(t *testing.T) {
	c := catalogtest.Shipped(t)
	opts := Options{IDPrefix: "hourglass-acme-", Index: func(m string) string { return catalog.Alias(m) + "-tenant-acme" }}
	objs, err := Render(c, opts)
	require.NoError(t, err)
	schema := Schema{}
	for alias, fields := range templateSchema(c) {
		schema[alias+"-tenant-acme"] = fields
	}
	require.NoError(t, Validate(objs, schema))
	for _, o := range objs {
		require.True(t, strings.HasPrefix(o.ID, "hourglass-acme-"), o.ID)
		b, _ := json.Marshal(o)
		require.NotRegexp(t, `"hourglass-metrics-[a-z_]+"`, string(b), "only the tenant's aliases: %s", o.ID)
	}
	// Against the shared schema, the tenant's data views name unknown indices.
	require.ErrorContains(t, Validate(objs, templateSchema(c)), "no index template defines this index or alias")
}

func find(t *testing.T, objs []Object, id string) *Object {
	t.Helper()
	for i := range objs {
		if objs[i].ID == id {
			return &objs[i]
		}
	}
	t.Fatalf("no object %s", id)
	return nil
}

// Broken inputs: each mutation of the golden objects must fail validation
// with the named problem.
func TestValidateRejectsBrokenObjects(t *testing.T) {
	c := catalogtest.Shipped(t)
	replaceIn := func(key, old, new string) func(o *Object) {
		return func(o *Object) {
			require.Contains(t, o.Attributes[key], old)
			o.Attributes[key] = strings.ReplaceAll(o.Attributes[key].(string), old, new)
		}
	}
	cases := []struct {
		name, id string
		mutate   func(o *Object)
		want     string
	}{
		{"unknown field in an aggregation", "hourglass-vis-latency",
			replaceIn("visState", `"field":"duration_ms_p95"`, `"field":"duration_ms_p95_typo"`),
			`agg 2 (avg): field "duration_ms_p95_typo" does not exist in hourglass-metrics-latency`},
		{"field of the wrong type", "hourglass-vis-request_rate",
			replaceIn("visState", `"field":"requests"`, `"field":"tenant"`),
			`agg 1 (avg): field "tenant" of hourglass-metrics-request_rate is keyword`},
		{"date histogram on a number", "hourglass-vis-bandwidth",
			replaceIn("visState", `"field":"window.start"`, `"field":"samples"`),
			`(date_histogram): field "samples" of hourglass-metrics-bandwidth is long`},
		{"series pointing at no aggregation", "hourglass-vis-avg_rtt",
			replaceIn("visState", `"data":{"id":"2"`, `"data":{"id":"9"`),
			`seriesParams[1]: data.id "9"`},
		{"filter on a missing field", "hourglass-vis-error_rate",
			func(o *Object) {
				meta := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
				meta["searchSourceJSON"] = strings.ReplaceAll(meta["searchSourceJSON"].(string), `"key":"window.size"`, `"key":"window.length"`)
			},
			`filter 0: field "window.length" does not exist`},
		{"dangling dashboard reference", "hourglass-dashboard",
			func(o *Object) { o.References[3].ID = "hourglass-vis-gone" },
			`reference "4:panel_4": no visualization with id "hourglass-vis-gone"`},
		{"panel without its reference", "hourglass-dashboard",
			func(o *Object) { o.References = o.References[1:] },
			`no reference named "1:panel_1"`},
		{"visualization's data view missing", "hourglass-vis-unique_clients",
			func(o *Object) { o.References[0].ID = "hourglass-dv-nope" },
			`reference "kibanaSavedObjectMeta.searchSourceJSON.index": no index-pattern with id "hourglass-dv-nope"`},
		{"data view on an unknown index", "hourglass-dv-avg_rtt",
			func(o *Object) { o.Attributes["title"] = "hourglass-metric-avg_rtt" },
			`title "hourglass-metric-avg_rtt": no index template defines this index or alias`},
		{"time field not a date", "hourglass-dv-latency",
			func(o *Object) { o.Attributes["timeFieldName"] = "window.size" },
			`timeFieldName "window.size": want a date field`},
		{"vega query on a missing field", "hourglass-vis-freshness",
			replaceIn("visState", `\"field\": \"window.end\"`, `\"field\": \"window.finish\"`),
			`vega data avg_rtt max: field "window.finish" does not exist in hourglass-metrics-avg_rtt`},
		{"vega query on an unknown index", "hourglass-vis-freshness",
			replaceIn("visState", `\"index\": \"hourglass-metrics-bandwidth\"`, `\"index\": \"hourglass-metrics-bw\"`),
			`vega data bandwidth: index "hourglass-metrics-bw"`},
	}
	data, err := os.ReadFile(golden)
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := ParseNDJSON(data)
			require.NoError(t, err)
			tc.mutate(find(t, objs, tc.id))
			err = Validate(objs, templateSchema(c))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("duplicate id", func(t *testing.T) {
		objs, err := ParseNDJSON(data)
		require.NoError(t, err)
		objs = append(objs, objs[0])
		require.ErrorContains(t, Validate(objs, templateSchema(c)), "duplicate id")
	})
}

func TestParseNDJSONReportsTheLine(t *testing.T) {
	_, err := ParseNDJSON([]byte("{\"type\":\"dashboard\",\"id\":\"a\"}\n{not json\n"))
	require.ErrorContains(t, err, "line 2")
	objs, err := ParseNDJSON([]byte("\n{\"type\":\"dashboard\",\"id\":\"a\",\"attributes\":{},\"references\":[]}\n\n"))
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(objs, func(o Object) bool { return o.ID == "a" }))
}

// A catalog with baselines (issue 17) renders panels that validate against
// its mappings, which carry baseline.<output>.* (the band panels: baseline_test.go).
func TestBaselineCatalogRendersAndValidates(t *testing.T) {
	c, err := catalog.Load("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	objs, err := Render(c, Options{})
	require.NoError(t, err)
	require.NoError(t, Validate(objs, templateSchema(c)))
	require.Contains(t, templateSchema(c)[catalog.Alias("latency")], "baseline.duration_ms_p95.upper")
}
