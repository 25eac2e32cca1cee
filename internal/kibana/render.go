package kibana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// Saved-object types and the migration versions of the format rendered here:
// Kibana runs only the migrations newer than these on import.
const (
	TypeDataView      = "index-pattern"
	TypeVisualization = "visualization"
	TypeDashboard     = "dashboard"

	coreMigrationVersion = "8.8.0"
	TimeField            = "window.start"
	windowSizeField      = "window.size"
	windowEndField       = "window.end"
)

var typeMigrationVersion = map[string]string{
	TypeDataView:      "8.0.0",
	TypeVisualization: "8.5.0",
	TypeDashboard:     "8.9.0",
}

// Object is one Kibana saved object as the import API and the NDJSON export
// format carry it.
type Object struct {
	Type                 string         `json:"type"`
	ID                   string         `json:"id"`
	Attributes           map[string]any `json:"attributes"`
	References           []Reference    `json:"references"`
	CoreMigrationVersion string         `json:"coreMigrationVersion,omitempty"`
	TypeMigrationVersion string         `json:"typeMigrationVersion,omitempty"`
	Managed              bool           `json:"managed"`
}

// Reference points from one saved object to another.
type Reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Options shape a rendering.
type Options struct {
	// IDPrefix starts every object id; default "hourglass-".
	IDPrefix string
	// Index is the index (alias) of a metric's data view; default catalog.Alias.
	Index func(metric string) string
	// Title is the dashboard title; default "Hourglass: traffic metrics".
	Title string
}

func (o Options) withDefaults() Options {
	if o.IDPrefix == "" {
		o.IDPrefix = "hourglass-"
	}
	if o.Index == nil {
		o.Index = catalog.Alias
	}
	if o.Title == "" {
		o.Title = "Hourglass: traffic metrics"
	}
	return o
}

// IDs of the objects of a rendering.
func (o Options) DataViewID(metric string) string { return o.withDefaults().IDPrefix + "dv-" + metric }
func (o Options) ChartID(metric string) string    { return o.withDefaults().IDPrefix + "vis-" + metric }
func (o Options) FreshnessID() string             { return o.withDefaults().IDPrefix + "vis-freshness" }
func (o Options) DashboardID() string             { return o.withDefaults().IDPrefix + "dashboard" }

// Render compiles the catalog into saved objects: the data views, the
// freshness panel, the charts (each metric's followed by the band panels of
// its baselines), then the dashboard (the order Kibana imports them in).
func Render(c *catalog.Catalog, opts Options) ([]Object, error) {
	opts = opts.withDefaults()
	if len(c.Metrics) == 0 {
		return nil, fmt.Errorf("kibana: render: the catalog has no metrics")
	}
	var objs, panels []Object
	for _, m := range c.Metrics {
		objs = append(objs, dataView(m, opts))
	}
	// Each metric's chart, then the band panel of each of its baselines.
	for _, m := range c.Metrics {
		v, err := chart(m, opts)
		if err != nil {
			return nil, err
		}
		panels = append(panels, v)
		for _, b := range m.Baselines {
			p, err := baselinePanel(m, b, opts)
			if err != nil {
				return nil, err
			}
			panels = append(panels, p)
		}
	}
	fresh, err := freshness(c, opts)
	if err != nil {
		return nil, err
	}
	objs = append(objs, fresh)
	objs = append(objs, panels...)
	dash, err := dashboard(opts, fresh, panels)
	if err != nil {
		return nil, err
	}
	return append(objs, dash), nil
}

func newObject(typ, id string, attrs map[string]any, refs []Reference) Object {
	if refs == nil {
		refs = []Reference{}
	}
	return Object{Type: typ, ID: id, Attributes: attrs, References: refs,
		CoreMigrationVersion: coreMigrationVersion, TypeMigrationVersion: typeMigrationVersion[typ]}
}

func dataView(m catalog.Metric, opts Options) Object {
	return newObject(TypeDataView, opts.DataViewID(m.Name), map[string]any{
		"title":         opts.Index(m.Name),
		"name":          "Hourglass " + m.Name,
		"timeFieldName": TimeField,
	}, nil)
}

// aggFor is the Kibana aggregation of an output, by its catalog function.
func aggFor(fn catalog.Fn) string {
	switch fn {
	case catalog.FnSum:
		return "sum"
	case catalog.FnMin:
		return "min"
	case catalog.FnMax, catalog.FnApproxDistinct:
		return "max"
	}
	return "avg" // count, ratio, avg, percentiles: per-window values averaged
}

// chartWindow is the window size a metric's chart shows: the smallest.
func chartWindow(m catalog.Metric) catalog.Duration {
	w := slices.MinFunc(m.Windows, func(a, b catalog.Duration) int { return int(a.Duration - b.Duration) })
	return w
}

const searchSourceIndexRef = "kibanaSavedObjectMeta.searchSourceJSON.index"

func chart(m catalog.Metric, opts Options) (Object, error) {
	window := chartWindow(m).String()
	var aggs, series []any
	id := 1
	for _, a := range m.Aggregations {
		for _, out := range a.Outputs() {
			label := fmt.Sprintf("%s of %s (per %s window)", aggFor(a.Fn), out, window)
			aggs = append(aggs, map[string]any{
				"id": strconv.Itoa(id), "enabled": true, "type": aggFor(a.Fn), "schema": "metric",
				"params": map[string]any{"field": out, "customLabel": label},
			})
			series = append(series, map[string]any{
				"show": true, "type": "line", "mode": "normal", "valueAxis": "ValueAxis-1",
				"data":                   map[string]any{"id": strconv.Itoa(id), "label": label},
				"drawLinesBetweenPoints": true, "lineWidth": 2, "interpolate": "linear", "showCircles": false,
			})
			id++
		}
	}
	aggs = append(aggs, map[string]any{
		"id": strconv.Itoa(id), "enabled": true, "type": "date_histogram", "schema": "segment",
		"params": map[string]any{"field": TimeField, "interval": "auto", "min_doc_count": 1,
			"extended_bounds": map[string]any{}, "useNormalizedEsInterval": true, "drop_partials": false},
	})
	title := m.Name
	if m.Description != "" {
		title = m.Name + ": " + m.Description
	}
	vis := map[string]any{
		"title": m.Name, "type": "line", "aggs": aggs,
		"params": map[string]any{
			"type":           "line",
			"addTooltip":     true,
			"addLegend":      true,
			"legendPosition": "bottom",
			"times":          []any{},
			"addTimeMarker":  false,
			"grid":           map[string]any{"categoryLines": false},
			"categoryAxes": []any{map[string]any{
				"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": true,
				"scale": map[string]any{"type": "linear"}, "labels": map[string]any{"show": true, "filter": true, "truncate": 100},
				"title": map[string]any{"text": TimeField},
			}},
			"valueAxes": []any{map[string]any{
				"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left", "show": true,
				"scale":  map[string]any{"type": "linear", "mode": "normal"},
				"labels": map[string]any{"show": true, "rotate": 0, "filter": false, "truncate": 100},
				"title":  map[string]any{"text": m.Name},
			}},
			"seriesParams": series,
		},
	}
	search := map[string]any{
		"indexRefName": searchSourceIndexRef,
		"query":        map[string]any{"query": "", "language": "kuery"},
		"filter": []any{map[string]any{
			"meta": map[string]any{
				"key": windowSizeField, "type": "phrase", "params": map[string]any{"query": window},
				"disabled": false, "negate": false, "alias": nil,
				"indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index",
			},
			"query":  map[string]any{"match_phrase": map[string]any{windowSizeField: window}},
			"$state": map[string]any{"store": "appState"},
		}},
	}
	visJSON, err := jsonString(vis)
	if err != nil {
		return Object{}, fmt.Errorf("kibana: render chart %s: %w", m.Name, err)
	}
	searchJSON, err := jsonString(search)
	if err != nil {
		return Object{}, fmt.Errorf("kibana: render chart %s: %w", m.Name, err)
	}
	dv := opts.DataViewID(m.Name)
	return newObject(TypeVisualization, opts.ChartID(m.Name), map[string]any{
		"title":                 m.Name,
		"description":           title,
		"visState":              visJSON,
		"uiStateJSON":           "{}",
		"version":               1,
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": searchJSON},
	}, []Reference{
		{Name: searchSourceIndexRef, Type: TypeDataView, ID: dv},
		{Name: "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index", Type: TypeDataView, ID: dv},
	}), nil
}

// freshness is a Vega panel: per metric, the age of the newest complete hour.
func freshness(c *catalog.Catalog, opts Options) (Object, error) {
	var data []any
	var names []string
	for _, m := range c.Metrics {
		if !slices.Contains(m.Windows, catalog.Duration{Duration: time.Hour}) {
			continue // no hourly documents: nothing to be fresh about
		}
		names = append(names, m.Name)
		data = append(data, map[string]any{
			"name": m.Name,
			"url": map[string]any{
				"index": opts.Index(m.Name),
				"body": map[string]any{
					"size": 0,
					"query": map[string]any{"bool": map[string]any{"filter": []any{
						map[string]any{"term": map[string]any{windowSizeField: "1h"}},
						map[string]any{"range": map[string]any{windowEndField: map[string]any{"lte": "now"}}},
					}}},
					"aggs": map[string]any{"newest": map[string]any{"max": map[string]any{"field": windowEndField}}},
				},
			},
			"format": map[string]any{"property": "aggregations"},
			"transform": []any{
				map[string]any{"type": "formula", "as": "metric", "expr": strconv.Quote(m.Name)},
				map[string]any{"type": "formula", "as": "sla_minutes", "expr": strconv.FormatFloat(m.FreshnessSLA.Minutes(), 'f', -1, 64)},
				map[string]any{"type": "formula", "as": "age_minutes",
					"expr": "datum.newest && datum.newest.value ? (now() - datum.newest.value) / 60000 : -1"},
			},
		})
	}
	if len(names) == 0 {
		return Object{}, fmt.Errorf("kibana: render freshness: no metric has a 1h window")
	}
	data = append(data, map[string]any{
		"name": "rows", "source": names,
		"transform": []any{map[string]any{"type": "window", "ops": []any{"row_number"}, "as": []any{"row"}}},
	})
	spec := map[string]any{
		"$schema":     "https://vega.github.io/schema/vega/v5.json",
		"description": "Age of the newest complete hour per metric (now - end of the newest closed 1h window); red over the metric's freshness SLA.",
		"autosize":    "none",
		"data":        data,
		"marks": []any{map[string]any{
			"type": "text", "from": map[string]any{"data": "rows"},
			"encode": map[string]any{"update": map[string]any{
				"x":        map[string]any{"value": 10},
				"y":        map[string]any{"signal": "datum.row * 22"},
				"fontSize": map[string]any{"value": 16},
				"fill":     map[string]any{"signal": "datum.age_minutes < 0 || datum.age_minutes > datum.sla_minutes ? '#bd271e' : '#017d73'"},
				"text": map[string]any{"signal": "datum.metric + ': ' + (datum.age_minutes < 0 ? 'no complete hour yet' : " +
					"format(datum.age_minutes, '.0f') + ' min since the newest complete hour (SLA ' + datum.sla_minutes + ' min)')"},
			}},
		}},
	}
	var specJSON bytes.Buffer
	enc := json.NewEncoder(&specJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(spec); err != nil {
		return Object{}, fmt.Errorf("kibana: render freshness: %w", err)
	}
	visJSON, err := jsonString(map[string]any{
		"title": "freshness", "type": "vega", "aggs": []any{},
		"params": map[string]any{"spec": specJSON.String()},
	})
	if err != nil {
		return Object{}, fmt.Errorf("kibana: render freshness: %w", err)
	}
	searchJSON, _ := jsonString(map[string]any{"query": map[string]any{"query": "", "language": "kuery"}, "filter": []any{}})
	return newObject(TypeVisualization, opts.FreshnessID(), map[string]any{
		"title":                 "freshness",
		"description":           "Age of the newest complete hour of each metric",
		"visState":              visJSON,
		"uiStateJSON":           "{}",
		"version":               1,
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": searchJSON},
	}, nil), nil
}

func dashboard(opts Options, fresh Object, charts []Object) (Object, error) {
	var panels []any
	var refs []Reference
	add := func(i int, o Object, x, y, w, h int) {
		idx := strconv.Itoa(i)
		panels = append(panels, map[string]any{
			"version": coreMigrationVersion, "type": TypeVisualization, "panelIndex": idx,
			"gridData":         map[string]any{"x": x, "y": y, "w": w, "h": h, "i": idx},
			"embeddableConfig": map[string]any{"enhancements": map[string]any{}},
			"panelRefName":     "panel_" + idx,
		})
		refs = append(refs, Reference{Name: idx + ":panel_" + idx, Type: TypeVisualization, ID: o.ID})
	}
	const freshH, w, h = 7, 24, 14
	add(1, fresh, 0, 0, 2*w, freshH)
	for i, c := range charts {
		add(i+2, c, (i%2)*w, freshH+(i/2)*h, w, h)
	}
	panelsJSON, err := jsonString(panels)
	if err != nil {
		return Object{}, fmt.Errorf("kibana: render dashboard: %w", err)
	}
	searchJSON, _ := jsonString(map[string]any{"query": map[string]any{"query": "", "language": "kuery"}, "filter": []any{}})
	return newObject(TypeDashboard, opts.DashboardID(), map[string]any{
		"title":                 opts.Title,
		"description":           "Per-tenant traffic metrics computed by Hourglass from the edge's access logs (generated from the metric catalog).",
		"panelsJSON":            panelsJSON,
		"optionsJSON":           `{"useMargins":true,"syncColors":false,"syncTooltips":false,"hidePanelTitles":false}`,
		"timeRestore":           true,
		"timeFrom":              "now-24h",
		"timeTo":                "now",
		"refreshInterval":       map[string]any{"pause": false, "value": 60000},
		"version":               1,
		"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": searchJSON},
	}, refs), nil
}

// jsonString encodes v compactly without HTML escaping: the string-valued JSON
// attributes (visState, panelsJSON, searchSourceJSON) Kibana stores.
func jsonString(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// MarshalNDJSON writes the objects one per line, the format of Kibana's saved
// objects export and import APIs.
func MarshalNDJSON(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return nil, fmt.Errorf("kibana: encode %s %s: %w", o.Type, o.ID, err)
		}
	}
	return b.Bytes(), nil
}

// ParseNDJSON reads saved objects, one JSON object per line.
func ParseNDJSON(data []byte) ([]Object, error) {
	var out []Object
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o Object
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("kibana: line %d: %w", i+1, err)
		}
		out = append(out, o)
	}
	return out, nil
}
