package kibana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// maxHits is the most documents one search returns by default
// (index.max_result_window); Validate refuses a larger size.
const maxHits = 10000

// Colours of the band panel. Anomalies are orange, never the red of the
// freshness panel (an anomaly is the tenant's traffic, not an SLA breach);
// the band is grey; the groups' lines take colours that are neither.
const (
	anomalyColor  = "#e7664c"
	bandColor     = "#98a2b3"
	expectedColor = "#69707d"
)

var groupColors = []any{"#6092c0", "#54b399", "#9170b8", "#d6bf57", "#ca8eae", "#b9a888"}

// BaselineID is the id of the band panel of a metric's baselined output.
func (o Options) BaselineID(metric, output string) string {
	return o.withDefaults().IDPrefix + "vis-baseline-" + metric + "-" + output
}

// baselinePath is the document field of one leaf of b's baseline object.
func baselinePath(b catalog.Baseline, leaf string) string {
	return catalog.BaselineField + "." + b.Output + "." + leaf
}

// baselineSourceFields lists the document fields the band panel of b reads,
// in the order of baselineColumns: window start and end, the group-by
// fields, the output, and the baseline object's leaves.
func baselineSourceFields(m catalog.Metric, b catalog.Baseline) []string {
	out := []string{TimeField, windowEndField}
	out = append(out, m.GroupBy...)
	out = append(out, b.Output)
	for _, leaf := range []string{catalog.BaselineExpected, catalog.BaselineLower, catalog.BaselineUpper, catalog.BaselineScore, catalog.BaselineAnomaly, catalog.BaselineSamples} {
		out = append(out, baselinePath(b, leaf))
	}
	return out
}

// baselineColumns names the Vega columns baselineSourceFields are projected
// to, in the same order.
func baselineColumns(m catalog.Metric) []string {
	out := []string{"start_text", "end_text"}
	for i := range m.GroupBy {
		out = append(out, "group_"+strconv.Itoa(i))
	}
	return append(out, "value", "expected", "lower", "upper", "score", "anomaly", "samples")
}

// baselineRule says in words how b makes its band and its anomalies.
func baselineRule(b catalog.Baseline) string {
	var stat, spread string
	switch b.Statistic {
	case catalog.StatMedianMAD:
		stat, spread = "median", fmt.Sprintf("%g × MAD", catalog.MADScale)
	default:
		stat, spread = "mean", "standard deviation"
	}
	var past string
	switch b.Lookback.Kind {
	case catalog.LookbackSameWindowOfDay:
		past = fmt.Sprintf("the same %s window on each of the %d previous days", b.Window, b.Lookback.Count)
	default:
		past = fmt.Sprintf("the %d previous %s windows", b.Lookback.Count, b.Window)
	}
	return fmt.Sprintf("band: %s ± %g × %s of %s (at least %d of them); anomalous outside the band",
		stat, b.Z, spread, past, b.MinSamples)
}

// baselineRuleShort is baselineRule for a panel's subtitle.
func baselineRuleShort(b catalog.Baseline) string {
	stat := "mean ± " + strconv.FormatFloat(b.Z, 'g', -1, 64) + " × stddev"
	if b.Statistic == catalog.StatMedianMAD {
		stat = "median ± " + strconv.FormatFloat(b.Z, 'g', -1, 64) + " × " + strconv.FormatFloat(catalog.MADScale, 'g', -1, 64) + "·MAD"
	}
	past := fmt.Sprintf("the %d previous windows", b.Lookback.Count)
	if b.Lookback.Kind == catalog.LookbackSameWindowOfDay {
		past = fmt.Sprintf("the same window of the %d previous days", b.Lookback.Count)
	}
	return fmt.Sprintf("band: %s of %s (≥ %d found)", stat, past, b.MinSamples)
}

// baselinePanel is a Vega panel of one baselined output over the documents
// of the baseline's window size: the value, the expected band (lower to
// upper) and expected value, and the anomalous windows marked. See doc.go,
// "Baselines".
func baselinePanel(m catalog.Metric, b catalog.Baseline, opts Options) (Object, error) {
	fields := baselineSourceFields(m, b)
	columns := baselineColumns(m)
	project := make([]any, len(fields))
	as := make([]any, len(columns))
	for i, f := range fields {
		project[i] = "_source." + f
		as[i] = columns[i]
	}
	source := make([]any, len(fields))
	for i, f := range fields {
		source[i] = f
	}
	group := make([]string, len(m.GroupBy))
	for i := range m.GroupBy {
		group[i] = "datum.group_" + strconv.Itoa(i)
	}
	groupExpr := "''"
	if len(group) > 0 {
		groupExpr = strings.Join(group, " + ' · ' + ")
	}
	window := b.Window.String()
	title := b.Output + " of " + m.Name + " (" + window + " windows): value, expected band, anomalies"
	short := b.Output + " (" + window + " windows)"

	tooltip := "{'window': timeFormat(datum.start, '%Y-%m-%d %H:%M'), " +
		"'" + strings.Join(m.GroupBy, " · ") + "': datum.group, " +
		"'" + b.Output + "': datum.value, " +
		"'expected': datum.expected, " +
		"'band': isValid(datum.lower) ? format(datum.lower, ',.4~f') + ' – ' + format(datum.upper, ',.4~f') : 'none (fewer than " + strconv.Itoa(b.MinSamples) + " past windows)', " +
		"'score': datum.score, 'past windows': datum.samples, " +
		"'anomaly': datum.anomaly ? (datum.settled ? 'yes (not an SLA breach)' : 'provisional: the window is still open') : 'no'}"

	data := []any{
		map[string]any{
			"name": "windows",
			"url": map[string]any{
				"index": opts.Index(m.Name),
				"body": map[string]any{
					"size":    maxHits,
					"_source": source,
					"sort":    []any{map[string]any{TimeField: "desc"}}, // the newest maxHits windows
					"query": map[string]any{"bool": map[string]any{
						"must":     []any{"%dashboard_context-must_clause%"},
						"must_not": []any{"%dashboard_context-must_not_clause%"},
						"filter": []any{
							"%dashboard_context-filter_clause%",
							map[string]any{"range": map[string]any{TimeField: map[string]any{"%timefilter%": true}}},
							map[string]any{"term": map[string]any{windowSizeField: window}},
							map[string]any{"exists": map[string]any{"field": baselinePath(b, catalog.BaselineSamples)}},
						},
					}},
				},
			},
			"format": map[string]any{"property": "hits.hits"},
			"transform": []any{
				map[string]any{"type": "project", "fields": project, "as": as},
				map[string]any{"type": "formula", "as": "start", "expr": "toDate(datum.start_text)"},
				map[string]any{"type": "formula", "as": "end", "expr": "toDate(datum.end_text)"},
				map[string]any{"type": "formula", "as": "mid", "expr": "(time(datum.start) + time(datum.end)) / 2"},
				map[string]any{"type": "formula", "as": "group", "expr": groupExpr},
				// A window still open (or within the allowed lateness) is
				// rewritten as records arrive: its value and verdict are not final.
				map[string]any{"type": "formula", "as": "settled", "expr": "time(datum.end) + lateness_ms <= now()"},
				map[string]any{"type": "collect", "sort": map[string]any{"field": "start"}},
			},
		},
		map[string]any{
			"name": "anomalies", "source": "windows",
			"transform": []any{map[string]any{"type": "filter", "expr": "datum.anomaly === true && isValid(datum.value)"}},
		},
	}
	xy := func(yField string) map[string]any {
		return map[string]any{
			"x": map[string]any{"scale": "x", "field": "mid"},
			"y": map[string]any{"scale": "y", "field": yField},
		}
	}
	with := func(base map[string]any, kv ...any) map[string]any {
		for i := 0; i+1 < len(kv); i += 2 {
			base[kv[i].(string)] = kv[i+1]
		}
		return base
	}
	spec := map[string]any{
		"$schema":     "https://vega.github.io/schema/vega/v5.json",
		"description": title + ". " + baselineRule(b) + ". An anomaly is unusual traffic of the tenant, not an SLA breach (freshness is on the freshness panel).",
		"autosize":    map[string]any{"type": "fit", "contains": "padding"},
		"padding":     5,
		"title": map[string]any{
			"text": short,
			"subtitle": []any{baselineRuleShort(b),
				"anomaly (orange): outside the band; unusual traffic, not an SLA breach"},
			"anchor": "start", "fontSize": 13, "subtitleFontSize": 11,
			"limit": map[string]any{"signal": "width"}, // truncated, never squeezing the plot
		},
		"signals": []any{map[string]any{"name": "lateness_ms", "value": m.AllowedLateness.Milliseconds()}},
		"data":    data,
		"scales": []any{
			map[string]any{"name": "x", "type": "time", "range": "width",
				"domain": map[string]any{"data": "windows", "fields": []any{"start", "end"}}},
			map[string]any{"name": "y", "type": "linear", "range": "height", "nice": true, "zero": false,
				"domain": map[string]any{"data": "windows", "fields": []any{"value", "lower", "upper"}}},
			map[string]any{"name": "color", "type": "ordinal", "range": groupColors,
				"domain": map[string]any{"data": "windows", "field": "group"}},
			map[string]any{"name": "key", "type": "ordinal",
				"domain": []any{"expected band", "anomalous window", "provisional (window not settled)"},
				"range":  []any{bandColor, anomalyColor, "#ffffff"}},
		},
		"axes": []any{
			map[string]any{"orient": "bottom", "scale": "x", "title": "window (" + window + ")", "labelOverlap": true},
			map[string]any{"orient": "left", "scale": "y", "title": b.Output, "grid": true},
		},
		"legends": []any{
			map[string]any{"stroke": "color", "title": strings.Join(m.GroupBy, " · "), "orient": "top", "direction": "horizontal", "symbolType": "stroke"},
			map[string]any{"fill": "key", "orient": "top", "direction": "horizontal", "symbolType": "square", "labelLimit": 260,
				"encode": map[string]any{"symbols": map[string]any{"update": map[string]any{
					"stroke": map[string]any{"value": anomalyColor}, "strokeWidth": map[string]any{"value": 1}}}}},
		},
		"marks": []any{
			// The anomalous windows, shaded over their whole span.
			map[string]any{"type": "rect", "from": map[string]any{"data": "anomalies"},
				"encode": map[string]any{"update": map[string]any{
					"x":           map[string]any{"scale": "x", "field": "start"},
					"x2":          map[string]any{"scale": "x", "field": "end"},
					"y":           map[string]any{"value": 0},
					"y2":          map[string]any{"signal": "height"},
					"fill":        map[string]any{"value": anomalyColor},
					"fillOpacity": map[string]any{"signal": "datum.settled ? 0.18 : 0.06"},
				}}},
			// Per group: the band (a step per window), the expected value
			// (dashed), the value.
			map[string]any{"type": "group",
				"from": map[string]any{"facet": map[string]any{"name": "series", "data": "windows", "groupby": "group"}},
				"encode": map[string]any{"enter": map[string]any{
					"width":  map[string]any{"field": map[string]any{"group": "width"}},
					"height": map[string]any{"field": map[string]any{"group": "height"}},
				}},
				"marks": []any{
					map[string]any{"type": "area", "from": map[string]any{"data": "series"},
						"encode": map[string]any{"update": with(xy("lower"),
							"y2", map[string]any{"scale": "y", "field": "upper"},
							"interpolate", map[string]any{"value": "step"},
							"fill", map[string]any{"value": bandColor},
							"fillOpacity", map[string]any{"value": 0.2},
							"defined", map[string]any{"signal": "isValid(datum.lower) && isValid(datum.upper)"})}},
					map[string]any{"type": "line", "from": map[string]any{"data": "series"},
						"encode": map[string]any{"update": with(xy("expected"),
							"interpolate", map[string]any{"value": "step"},
							"stroke", map[string]any{"value": expectedColor},
							"strokeDash", map[string]any{"value": []any{4, 3}},
							"strokeWidth", map[string]any{"value": 1},
							"defined", map[string]any{"signal": "isValid(datum.expected)"})}},
					map[string]any{"type": "line", "from": map[string]any{"data": "series"},
						"encode": map[string]any{"update": with(xy("value"),
							"stroke", map[string]any{"scale": "color", "field": "group"},
							"strokeWidth", map[string]any{"value": 2},
							"defined", map[string]any{"signal": "isValid(datum.value)"})}},
					map[string]any{"type": "symbol", "from": map[string]any{"data": "series"},
						"encode": map[string]any{"update": with(xy("value"),
							"size", map[string]any{"value": 16},
							"fill", map[string]any{"scale": "color", "field": "group"},
							"opacity", map[string]any{"signal": "isValid(datum.value) ? 1 : 0"},
							"tooltip", map[string]any{"signal": tooltip})}},
				}},
			// The anomalies: filled when the window is settled, hollow while
			// it may still change.
			map[string]any{"type": "symbol", "from": map[string]any{"data": "anomalies"},
				"encode": map[string]any{"update": with(xy("value"),
					"shape", map[string]any{"value": "circle"},
					"size", map[string]any{"value": 110},
					"stroke", map[string]any{"value": anomalyColor},
					"strokeWidth", map[string]any{"value": 2},
					"fill", map[string]any{"signal": "datum.settled ? '" + anomalyColor + "' : '#ffffff'"},
					"tooltip", map[string]any{"signal": tooltip})}},
		},
	}
	var specJSON bytes.Buffer
	enc := json.NewEncoder(&specJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(spec); err != nil {
		return Object{}, fmt.Errorf("kibana: render baseline %s.%s: %w", m.Name, b.Output, err)
	}
	name := m.Name + ": " + b.Output + " against its baseline"
	visJSON, err := jsonString(map[string]any{
		"title": name, "type": "vega", "aggs": []any{},
		"params": map[string]any{"spec": specJSON.String()},
	})
	if err != nil {
		return Object{}, fmt.Errorf("kibana: render baseline %s.%s: %w", m.Name, b.Output, err)
	}
	searchJSON, _ := jsonString(map[string]any{"query": map[string]any{"query": "", "language": "kuery"}, "filter": []any{}})
	return newObject(TypeVisualization, opts.BaselineID(m.Name, b.Output), map[string]any{
		"title":                 name,
		"description":           title + "; " + baselineRule(b) + ". An anomaly is not an SLA breach.",
		"visState":              visJSON,
		"uiStateJSON":           "{}",
		"version":               1,
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": searchJSON},
	}, nil), nil
}
