package kibana

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
	"github.com/hourglass-io/hourglass/internal/essetup"
)

// shippedBaselines is the shipped catalog, which declares two baselines
// (request_rate's requests, latency's duration_ms_p95): its objects are the
// golden kibana/saved-objects.ndjson (TestGoldenSavedObjects).
func shippedBaselines(t *testing.T) *catalog.Catalog {
	t.Helper()
	c := catalogtest.Shipped(t)
	n := 0
	for _, m := range c.Metrics {
		n += len(m.Baselines)
	}
	require.Equal(t, 2, n, "the shipped catalog's baselines")
	return c
}

// The leaves the panel reads are leaves of the mapping of a baseline object
// (essetup.BaselineMapping, which the driver's documents must fit: the
// metric mappings are strict).
func TestBaselineLeavesAreMapped(t *testing.T) {
	props := essetup.BaselineMapping()["properties"].(map[string]any)
	for _, leaf := range []string{catalog.BaselineExpected, catalog.BaselineLower, catalog.BaselineUpper, catalog.BaselineScore, catalog.BaselineAnomaly, catalog.BaselineSamples} {
		require.Contains(t, props, leaf)
	}
	require.Equal(t, "boolean", props[catalog.BaselineAnomaly].(map[string]any)["type"])
}

// vegaSpec decodes the Vega spec of a visualization.
func vegaSpec(t *testing.T, o *Object) map[string]any {
	t.Helper()
	var vis struct {
		Type   string         `json:"type"`
		Params map[string]any `json:"params"`
	}
	require.NoError(t, json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vis))
	require.Equal(t, "vega", vis.Type)
	var spec map[string]any
	require.NoError(t, json.Unmarshal([]byte(vis.Params["spec"].(string)), &spec))
	return spec
}

// setVegaSpec writes spec back into o's visState.
func setVegaSpec(t *testing.T, o *Object, spec map[string]any) {
	t.Helper()
	var vis map[string]any
	require.NoError(t, json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vis))
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	vis["params"].(map[string]any)["spec"] = string(b)
	s, err := jsonString(vis)
	require.NoError(t, err)
	o.Attributes["visState"] = s
}

func dataNamed(t *testing.T, spec map[string]any, name string) map[string]any {
	t.Helper()
	for _, d := range spec["data"].([]any) {
		if dm := d.(map[string]any); dm["name"] == name {
			return dm
		}
	}
	t.Fatalf("no vega data %q", name)
	return nil
}

func strs(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// Every baseline of the shipped catalog gets its band panel, right after its
// metric's chart on the dashboard, reading exactly the value, the window and
// the baseline object of the baseline's window size.
func TestBaselinePanels(t *testing.T) {
	c := shippedBaselines(t)
	objs, err := Render(c, Options{})
	require.NoError(t, err)
	require.NoError(t, Validate(objs, templateSchema(c)))

	var dash Object
	var vegaPanels []string
	for _, o := range objs {
		if o.Type == TypeDashboard {
			dash = o
		}
		if strings.HasPrefix(o.ID, "hourglass-vis-baseline-") {
			vegaPanels = append(vegaPanels, o.ID)
		}
	}
	var onDashboard []string
	for _, r := range dash.References {
		onDashboard = append(onDashboard, r.ID)
	}
	var want []string
	for _, m := range c.Metrics {
		chartAt := slices.Index(onDashboard, Options{}.ChartID(m.Name))
		require.GreaterOrEqual(t, chartAt, 0)
		for i, b := range m.Baselines {
			id := Options{}.BaselineID(m.Name, b.Output)
			want = append(want, id)
			require.Equal(t, id, onDashboard[chartAt+1+i], "the band panel follows its metric's chart")

			o := find(t, objs, id)
			require.Contains(t, o.Attributes["description"], "not an SLA breach")
			spec := vegaSpec(t, o)
			windows := dataNamed(t, spec, "windows")
			url := windows["url"].(map[string]any)
			require.Equal(t, catalog.Alias(m.Name), url["index"])
			body := url["body"].(map[string]any)
			obj := catalog.BaselineField + "." + b.Output + "."
			wantFields := append(append([]string{TimeField, windowEndField}, m.GroupBy...), b.Output,
				obj+"expected", obj+"lower", obj+"upper", obj+"score", obj+"anomaly", obj+"samples")
			require.Equal(t, wantFields, strs(body["_source"]))
			for _, f := range wantFields {
				require.Contains(t, MetricSchema(c)[catalog.Alias(m.Name)], f, "a field of the metric document")
			}
			filters, err := json.Marshal(body["query"])
			require.NoError(t, err)
			require.Contains(t, string(filters), `{"term":{"window.size":"`+b.Window.String()+`"}}`, "the baseline's window size only")
			require.Contains(t, string(filters), `{"exists":{"field":"`+obj+`samples"}}`, "documents carrying the baseline")
			require.Contains(t, string(filters), `{"range":{"window.start":{"%timefilter%":true}}}`, "the dashboard's time range")
			require.Contains(t, string(filters), `"%dashboard_context-filter_clause%"`, "the dashboard's filters")

			project := windows["transform"].([]any)[0].(map[string]any)
			require.Equal(t, "project", project["type"])
			for i, f := range strs(project["fields"]) {
				require.Equal(t, "_source."+wantFields[i], f)
			}
			// The marks: band (area lower..upper), expected, value, anomalies.
			marksJSON, err := json.Marshal(spec["marks"])
			require.NoError(t, err)
			marks := string(marksJSON)
			require.Contains(t, marks, `"y":{"field":"lower","scale":"y"},"y2":{"field":"upper","scale":"y"}`)
			require.Contains(t, marks, `"y":{"field":"expected","scale":"y"}`)
			require.Contains(t, marks, `"y":{"field":"value","scale":"y"}`)
			require.Contains(t, marks, `"from":{"data":"anomalies"}`)
			require.Equal(t, "datum.anomaly === true && isValid(datum.value)",
				dataNamed(t, spec, "anomalies")["transform"].([]any)[0].(map[string]any)["expr"])
			require.NotContains(t, marks, "#bd271e", "not the freshness panel's SLA red")
		}
	}
	require.Equal(t, want, vegaPanels)
	require.Len(t, want, 2, "request_rate.requests and latency.duration_ms_p95")

	// Without baselines, no band panel.
	bare := catalogtest.Shipped(t)
	for i := range bare.Metrics {
		bare.Metrics[i].Baselines = nil
	}
	bareObjs, err := Render(bare, Options{})
	require.NoError(t, err)
	for _, o := range bareObjs {
		require.NotContains(t, o.ID, "baseline")
	}
}

// A metric grouped by more than the tenant, with a last_windows baseline on
// its only window size (internal/catalog's full example).
func TestBaselinePanelSeveralGroupFields(t *testing.T) {
	c, err := catalog.Load("../catalog/testdata/full.good.yaml")
	require.NoError(t, err)
	objs, err := Render(c, Options{})
	require.NoError(t, err)
	require.NoError(t, Validate(objs, templateSchema(c)))
	spec := vegaSpec(t, find(t, objs, "hourglass-vis-baseline-slow_api-p_p99_9"))
	require.Equal(t, []string{"window.start", "window.end", "tenant", "host", "p_p99_9",
		"baseline.p_p99_9.expected", "baseline.p_p99_9.lower", "baseline.p_p99_9.upper",
		"baseline.p_p99_9.score", "baseline.p_p99_9.anomaly", "baseline.p_p99_9.samples"},
		strs(dataNamed(t, spec, "windows")["url"].(map[string]any)["body"].(map[string]any)["_source"]))
	require.Contains(t, specText(t, spec), `datum.group_0 + ' · ' + datum.group_1`)
	require.Contains(t, specText(t, spec), "the 24 previous 1h windows")
	require.Contains(t, specText(t, spec), `"value": 1800000`, "allowed lateness 30m: windows settle 30 minutes after their end")
}

func specText(t *testing.T, spec map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(spec, "", "  ")
	require.NoError(t, err)
	return string(b)
}

// Broken band panels: each must fail validation with the named problem.
func TestValidateRejectsBrokenBaselinePanels(t *testing.T) {
	c := shippedBaselines(t)
	const id = "hourglass-vis-baseline-request_rate-requests"
	body := func(spec map[string]any) map[string]any {
		return dataNamed(t, spec, "windows")["url"].(map[string]any)["body"].(map[string]any)
	}
	project := func(spec map[string]any) map[string]any {
		return dataNamed(t, spec, "windows")["transform"].([]any)[0].(map[string]any)
	}
	replace := func(list []any, old, new string) {
		i := slices.Index(list, any(old))
		require.GreaterOrEqual(t, i, 0, old)
		list[i] = new
	}
	cases := []struct {
		name   string
		mutate func(spec map[string]any)
		want   []string
	}{
		{"a baseline leaf the document does not have", func(spec map[string]any) {
			replace(body(spec)["_source"].([]any), "baseline.requests.lower", "baseline.requests.lowest")
			replace(project(spec)["fields"].([]any), "_source.baseline.requests.lower", "_source.baseline.requests.lowest")
		}, []string{
			`vega data windows _source: field "baseline.requests.lowest" does not exist in hourglass-metrics-request_rate`,
			`vega data windows: reads _source.baseline.requests.lowest: field "baseline.requests.lowest" does not exist in hourglass-metrics-request_rate`,
		}},
		{"another output's baseline (not declared)", func(spec map[string]any) {
			replace(project(spec)["fields"].([]any), "_source.baseline.requests.upper", "_source.baseline.requests_per_second.upper")
		}, []string{`reads _source.baseline.requests_per_second.upper: field "baseline.requests_per_second.upper" does not exist`}},
		{"a field the query's _source does not return", func(spec map[string]any) {
			b := body(spec)
			b["_source"] = slices.DeleteFunc(b["_source"].([]any), func(e any) bool { return e == "baseline.requests.upper" })
		}, []string{`reads _source.baseline.requests.upper, which the query's _source does not return`}},
		{"the baseline object instead of a leaf", func(spec map[string]any) {
			tr := dataNamed(t, spec, "windows")["transform"].([]any)
			tr = append(tr, map[string]any{"type": "formula", "as": "b", "expr": "datum._source.baseline.requests"})
			dataNamed(t, spec, "windows")["transform"] = tr
		}, []string{`reads _source.baseline.requests: field "baseline.requests" is an object, not a field`}},
		{"the panel on another metric's index", func(spec map[string]any) {
			dataNamed(t, spec, "windows")["url"].(map[string]any)["index"] = catalog.Alias("avg_rtt")
		}, []string{
			`vega data windows exists: field "baseline.requests.samples" does not exist in hourglass-metrics-avg_rtt`,
			`reads _source.requests: field "requests" does not exist in hourglass-metrics-avg_rtt`,
		}},
		{"more hits than a search returns", func(spec map[string]any) {
			body(spec)["size"] = 20000
		}, []string{`size 20000 is over index.max_result_window (10000)`}},
		{"sort on a missing field", func(spec map[string]any) {
			body(spec)["sort"] = []any{map[string]any{"window.begin": "desc"}}
		}, []string{`vega data windows sort: field "window.begin" does not exist`}},
		{"an expression in a mark reading a missing field", func(spec map[string]any) {
			marks := spec["marks"].([]any)
			spec["marks"] = append(marks, map[string]any{"type": "text", "from": map[string]any{"data": "windows"},
				"encode": map[string]any{"update": map[string]any{"text": map[string]any{"signal": "datum._source.baseline.requests.median"}}}})
		}, []string{`vega marks: field "baseline.requests.median" (read as _source.baseline.requests.median) is in no index the spec queries`}},
		{"derived data reading a missing field", func(spec map[string]any) {
			a := dataNamed(t, spec, "anomalies")
			a["transform"] = append(a["transform"].([]any), map[string]any{"type": "formula", "as": "x", "expr": "datum._source.window.middle"})
		}, []string{`vega data anomalies: reads _source.window.middle: field "window.middle" does not exist`}},
	}
	objs0, err := Render(c, Options{})
	require.NoError(t, err)
	data, err := MarshalNDJSON(objs0)
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := ParseNDJSON(data)
			require.NoError(t, err)
			o := find(t, objs, id)
			spec := vegaSpec(t, o)
			tc.mutate(spec)
			setVegaSpec(t, o, spec)
			err = Validate(objs, templateSchema(c))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}

	// The objects against the mappings of the same catalog without its
	// baselines (no baseline objects): every baseline field of both panels is
	// refused.
	objs, err := ParseNDJSON(data)
	require.NoError(t, err)
	bare := catalogtest.Shipped(t)
	for i := range bare.Metrics {
		bare.Metrics[i].Baselines = nil
	}
	err = Validate(objs, templateSchema(bare))
	require.Error(t, err)
	var refused []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "reads _source.baseline.") {
			refused = append(refused, line)
		}
	}
	require.Len(t, refused, 2*6, "six baseline leaves per panel: %s", err)
	require.NotContains(t, err.Error(), "hourglass-vis-latency:", "the other panels still fit")
}
