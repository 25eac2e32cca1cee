package kibana

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/essetup"
)

// Schema maps an index or alias name to its fields (dotted paths) and their
// Elasticsearch types, as the index templates define them.
type Schema map[string]map[string]string

// SchemaFromTemplates reads the fields of every index template's mapping and
// files them under the template's aliases (the names data views use).
func SchemaFromTemplates(templates []essetup.Template) Schema {
	s := Schema{}
	for _, t := range templates {
		tpl, _ := t.Body["template"].(map[string]any)
		mappings, _ := tpl["mappings"].(map[string]any)
		fields := FlattenMapping(mappings)
		aliases, _ := tpl["aliases"].(map[string]any)
		for a := range aliases {
			s[a] = fields
		}
	}
	return s
}

// MetricSchema is the schema of the catalog's metric aliases, from the
// templates `hourglass es setup` installs.
func MetricSchema(c *catalog.Catalog) Schema {
	s := Schema{}
	for _, m := range c.Metrics {
		s[catalog.Alias(m.Name)] = FlattenMapping(essetup.MetricMapping(m))
	}
	return s
}

// FlattenMapping lists the leaf fields of a mapping: window.start → date.
func FlattenMapping(mapping map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for name, v := range props {
			def, _ := v.(map[string]any)
			if sub, ok := def["properties"].(map[string]any); ok {
				walk(prefix+name+".", sub)
				continue
			}
			if typ, ok := def["type"].(string); ok {
				out[prefix+name] = typ
			}
		}
	}
	props, _ := mapping["properties"].(map[string]any)
	walk("", props)
	return out
}

// Field types accepted per use.
var (
	numeric  = []string{"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
	dates    = []string{"date", "date_nanos"}
	exact    = slices.Concat([]string{"keyword", "ip", "boolean"}, numeric, dates)
	aggTypes = map[string][]string{
		"avg": numeric, "sum": numeric, "median": numeric, "percentiles": numeric, "std_dev": numeric,
		"min": slices.Concat(numeric, dates), "max": slices.Concat(numeric, dates),
		"cardinality": exact, "value_count": exact, "terms": exact,
		"date_histogram": dates, "histogram": numeric,
	}
	metricAggs = []string{"avg", "sum", "median", "percentiles", "std_dev", "min", "max", "cardinality", "value_count", "count"}
)

// Validate checks saved objects statically: ids are unique; every reference
// resolves to an object of the set with the referenced type; every data view
// names an index of the schema with a date time field; every field a
// visualization or its filters use exists in its data view's index with a type
// the aggregation accepts; Vega queries name known indices and fields; every
// dashboard panel resolves to a visualization. The error lists every problem.
func Validate(objs []Object, schema Schema) error {
	v := &validator{schema: schema, byKey: map[string]Object{}}
	for _, o := range objs {
		key := o.Type + "/" + o.ID
		if _, dup := v.byKey[key]; dup {
			v.errorf(o, "duplicate id")
		}
		v.byKey[key] = o
	}
	for _, o := range objs {
		for _, r := range o.References {
			if _, ok := v.byKey[r.Type+"/"+r.ID]; !ok {
				v.errorf(o, "reference %q: no %s with id %q", r.Name, r.Type, r.ID)
			}
		}
		switch o.Type {
		case TypeDataView:
			v.dataView(o)
		case TypeVisualization:
			v.visualization(o)
		case TypeDashboard:
			v.dashboard(o)
		default:
			v.errorf(o, "unsupported type")
		}
	}
	return errors.Join(v.errs...)
}

type validator struct {
	schema Schema
	byKey  map[string]Object
	errs   []error
}

func (v *validator) errorf(o Object, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s %s: %s", o.Type, o.ID, fmt.Sprintf(format, args...)))
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func (v *validator) dataView(o Object) {
	title := str(o.Attributes, "title")
	fields, ok := v.schema[title]
	if !ok {
		v.errorf(o, "title %q: no index template defines this index or alias", title)
		return
	}
	tf := str(o.Attributes, "timeFieldName")
	if typ, ok := fields[tf]; !ok || !slices.Contains(dates, typ) {
		v.errorf(o, "timeFieldName %q: want a date field of %s, have %q", tf, title, typ)
	}
}

// resolve finds the object a named reference of o points to.
func (v *validator) resolve(o Object, name string) (Object, bool) {
	for _, r := range o.References {
		if r.Name == name {
			target, ok := v.byKey[r.Type+"/"+r.ID]
			return target, ok
		}
	}
	v.errorf(o, "no reference named %q", name)
	return Object{}, false
}

// fieldsOf returns the schema fields of the data view o references by name.
func (v *validator) fieldsOf(o Object, refName string) (map[string]string, string) {
	dv, ok := v.resolve(o, refName)
	if !ok {
		return nil, ""
	}
	if dv.Type != TypeDataView {
		v.errorf(o, "reference %q: want a %s, have a %s", refName, TypeDataView, dv.Type)
		return nil, ""
	}
	title := str(dv.Attributes, "title")
	return v.schema[title], title
}

func (v *validator) checkField(o Object, where, index string, fields map[string]string, field string, accepted []string) {
	typ, ok := fields[field]
	switch {
	case field == "":
		v.errorf(o, "%s: no field", where)
	case !ok:
		v.errorf(o, "%s: field %q does not exist in %s", where, field, index)
	case !slices.Contains(accepted, typ):
		v.errorf(o, "%s: field %q of %s is %s; accepted: %s", where, field, index, typ, strings.Join(accepted, ", "))
	}
}

func (v *validator) visualization(o Object) {
	var vis struct {
		Type string `json:"type"`
		Aggs []struct {
			ID      string         `json:"id"`
			Enabled *bool          `json:"enabled"`
			Type    string         `json:"type"`
			Schema  string         `json:"schema"`
			Params  map[string]any `json:"params"`
		} `json:"aggs"`
		Params map[string]any `json:"params"`
	}
	if err := json.Unmarshal([]byte(str(o.Attributes, "visState")), &vis); err != nil {
		v.errorf(o, "visState: %v", err)
		return
	}
	meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
	var search struct {
		IndexRefName string `json:"indexRefName"`
		Filter       []struct {
			Meta  map[string]any `json:"meta"`
			Query map[string]any `json:"query"`
		} `json:"filter"`
	}
	if err := json.Unmarshal([]byte(str(meta, "searchSourceJSON")), &search); err != nil {
		v.errorf(o, "searchSourceJSON: %v", err)
		return
	}
	var fields map[string]string
	var index string
	if search.IndexRefName != "" {
		fields, index = v.fieldsOf(o, search.IndexRefName)
	}
	for i, f := range search.Filter {
		where := fmt.Sprintf("filter %d", i)
		ff, fi := fields, index
		if ref := str(f.Meta, "indexRefName"); ref != "" {
			ff, fi = v.fieldsOf(o, ref)
		}
		if ff == nil {
			v.errorf(o, "%s: no data view", where)
			continue
		}
		v.checkField(o, where, fi, ff, str(f.Meta, "key"), exact)
		for _, q := range f.Query {
			if m, ok := q.(map[string]any); ok {
				for field := range m {
					v.checkField(o, where+" query", fi, ff, field, exact)
				}
			}
		}
	}
	switch vis.Type {
	case "vega":
		v.vega(o, str(vis.Params, "spec"))
		return
	case "line", "area", "histogram", "metric", "table":
	default:
		v.errorf(o, "visState type %q is not one the validator knows", vis.Type)
		return
	}
	if fields == nil {
		v.errorf(o, "aggregation-based visualization without a data view (searchSourceJSON.indexRefName)")
		return
	}
	metricIDs := map[string]bool{}
	for _, a := range vis.Aggs {
		where := fmt.Sprintf("agg %s (%s)", a.ID, a.Type)
		if a.Type == "count" {
			metricIDs[a.ID] = true
			continue
		}
		accepted, known := aggTypes[a.Type]
		if !known {
			v.errorf(o, "%s: unknown aggregation type", where)
			continue
		}
		if slices.Contains(metricAggs, a.Type) {
			metricIDs[a.ID] = true
		}
		v.checkField(o, where, index, fields, str(a.Params, "field"), accepted)
	}
	series, _ := vis.Params["seriesParams"].([]any)
	for i, s := range series {
		sm, _ := s.(map[string]any)
		data, _ := sm["data"].(map[string]any)
		if id := str(data, "id"); !metricIDs[id] {
			v.errorf(o, "seriesParams[%d]: data.id %q is not a metric aggregation of the visualization", i, id)
		}
	}
}

// vega checks the Elasticsearch queries of a Vega spec: each names an index of
// the schema, and every field its term/range clauses and metric aggregations
// use exists there with an accepted type.
func (v *validator) vega(o Object, specText string) {
	var spec struct {
		Data []struct {
			Name string         `json:"name"`
			URL  map[string]any `json:"url"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(specText), &spec); err != nil {
		v.errorf(o, "vega spec (emitted as strict JSON): %v", err)
		return
	}
	for _, d := range spec.Data {
		if d.URL == nil {
			continue
		}
		where := "vega data " + d.Name
		index := str(d.URL, "index")
		fields, ok := v.schema[index]
		if !ok {
			v.errorf(o, "%s: index %q: no index template defines it", where, index)
			continue
		}
		body, _ := d.URL["body"].(map[string]any)
		v.queryFields(o, where, index, fields, body)
	}
}

// queryFields walks a query DSL body for the clauses and aggregations it knows.
func (v *validator) queryFields(o Object, where, index string, fields map[string]string, node any) {
	switch n := node.(type) {
	case []any:
		for _, e := range n {
			v.queryFields(o, where, index, fields, e)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(n)) {
			child := n[k]
			cm, _ := child.(map[string]any)
			switch k {
			case "term", "match_phrase":
				for _, f := range sortedKeys(cm) {
					v.checkField(o, where+" "+k, index, fields, f, exact)
				}
			case "range":
				for _, f := range sortedKeys(cm) {
					v.checkField(o, where+" range", index, fields, f, slices.Concat(numeric, dates))
				}
			default:
				if accepted, ok := aggTypes[k]; ok && cm != nil {
					if f, ok := cm["field"].(string); ok {
						v.checkField(o, where+" "+k, index, fields, f, accepted)
						continue
					}
				}
				v.queryFields(o, where, index, fields, child)
			}
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (v *validator) dashboard(o Object) {
	var panels []struct {
		PanelIndex   string         `json:"panelIndex"`
		PanelRefName string         `json:"panelRefName"`
		Type         string         `json:"type"`
		GridData     map[string]any `json:"gridData"`
	}
	if err := json.Unmarshal([]byte(str(o.Attributes, "panelsJSON")), &panels); err != nil {
		v.errorf(o, "panelsJSON: %v", err)
		return
	}
	if len(panels) == 0 {
		v.errorf(o, "no panels")
	}
	seen := map[string]bool{}
	for i, p := range panels {
		if p.PanelIndex == "" || seen[p.PanelIndex] {
			v.errorf(o, "panel %d: panelIndex %q missing or repeated", i, p.PanelIndex)
		}
		seen[p.PanelIndex] = true
		if p.GridData == nil {
			v.errorf(o, "panel %s: no gridData", p.PanelIndex)
		}
		target, ok := v.resolve(o, p.PanelIndex+":"+p.PanelRefName)
		if ok && target.Type != p.Type {
			v.errorf(o, "panel %s: type %q but the reference points to a %s", p.PanelIndex, p.Type, target.Type)
		}
	}
}
