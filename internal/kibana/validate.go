package kibana

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
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
	present    = slices.Concat(exact, []string{"text", "match_only_text", "wildcard", "constant_keyword"})
	metricAggs = []string{"avg", "sum", "median", "percentiles", "std_dev", "min", "max", "cardinality", "value_count", "count"}
)

// Validate checks saved objects statically: ids are unique; every reference
// resolves to an object of the set with the referenced type; every data view
// names an index of the schema with a date time field; every field a
// visualization or its filters use exists in its data view's index with a type
// the aggregation accepts; Vega queries name known indices and fields, and
// every document field a Vega spec reads from the hits exists in the queried
// index and is returned by the query's _source (see vega); every dashboard
// panel resolves to a visualization. The error lists every problem.
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
// the schema; every field its term/range/exists clauses, metric aggregations,
// sort, _source and %timefield% use exists there with an accepted type; its
// size is at most index.max_result_window. It also checks the document fields
// the spec reads from the hits (a string "_source.<field>" in a transform, as
// Vega's field accessors take it, or "datum._source.<field>" in an
// expression): each must be a field of the index, not an object, and one the
// query's _source returns. Data derived from a query ({"source": name})
// inherits its index; references in scales and marks must name a field of
// some queried index.
func (v *validator) vega(o Object, specText string) {
	var spec struct {
		Data []struct {
			Name      string         `json:"name"`
			Source    any            `json:"source"`
			URL       map[string]any `json:"url"`
			Transform []any          `json:"transform"`
		} `json:"data"`
		Scales []any `json:"scales"`
		Marks  []any `json:"marks"`
	}
	if err := json.Unmarshal([]byte(specText), &spec); err != nil {
		v.errorf(o, "vega spec (emitted as strict JSON): %v", err)
		return
	}
	type hits struct {
		index    string
		fields   map[string]string
		includes []string // nil: the whole _source
	}
	byName := map[string]*hits{}
	var queried []*hits
	for _, d := range spec.Data {
		where := "vega data " + d.Name
		var h *hits
		if d.URL != nil {
			index := str(d.URL, "index")
			fields, ok := v.schema[index]
			if !ok {
				v.errorf(o, "%s: index %q: no index template defines it", where, index)
				continue
			}
			body, _ := d.URL["body"].(map[string]any)
			v.queryFields(o, where, index, fields, body)
			h = &hits{index: index, fields: fields, includes: v.searchBody(o, where, index, fields, body)}
			if tf, ok := d.URL["%timefield%"].(string); ok {
				v.checkField(o, where+" %timefield%", index, fields, tf, dates)
			}
			queried = append(queried, h)
		} else if src, ok := d.Source.(string); ok {
			h = byName[src]
		}
		if d.Name != "" && h != nil {
			byName[d.Name] = h
		}
		for _, ref := range sourceRefs(d.Transform) {
			if h == nil {
				v.errorf(o, "%s: reads _source.%s but queries no index", where, ref)
				continue
			}
			v.sourceRef(o, where, h.index, h.fields, h.includes, ref)
		}
	}
	for _, part := range []struct {
		name string
		node []any
	}{{"scales", spec.Scales}, {"marks", spec.Marks}} {
		for _, ref := range sourceRefs(part.node) {
			found := false
			for _, h := range queried {
				if _, ok := h.fields[ref]; ok {
					found = true
				}
			}
			if !found {
				v.errorf(o, "vega %s: field %q (read as _source.%s) is in no index the spec queries", part.name, ref, ref)
			}
		}
	}
}

// maxResultWindow is Elasticsearch's and OpenSearch's default
// index.max_result_window: a search asking for more hits fails.
const maxResultWindow = maxHits

// searchBody checks the body keys a query DSL walk does not see: size, sort
// and _source. It returns the _source include patterns (nil: everything).
func (v *validator) searchBody(o Object, where, index string, fields map[string]string, body map[string]any) []string {
	if size, ok := body["size"].(float64); ok && size > maxResultWindow {
		v.errorf(o, "%s: size %g is over index.max_result_window (%d)", where, size, maxResultWindow)
	}
	sorts, _ := body["sort"].([]any)
	if s, ok := body["sort"].(string); ok {
		sorts = []any{s}
	}
	for _, s := range sorts {
		var names []string
		switch x := s.(type) {
		case string:
			names = []string{x}
		case map[string]any:
			names = sortedKeys(x)
		}
		for _, f := range names {
			if f != "_score" && f != "_doc" {
				v.checkField(o, where+" sort", index, fields, f, exact)
			}
		}
	}
	var includes []string
	switch src := body["_source"].(type) {
	case nil, bool: // absent or true: everything; false: nothing to check against
		if src == false {
			return []string{}
		}
		return nil
	case string:
		includes = []string{src}
	case []any:
		for _, e := range src {
			s, _ := e.(string)
			includes = append(includes, s)
		}
	case map[string]any:
		inc, _ := src["includes"].([]any)
		if inc == nil {
			return nil
		}
		for _, e := range inc {
			s, _ := e.(string)
			includes = append(includes, s)
		}
	}
	for _, inc := range includes {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(fields)), func(f string) bool { return covers(inc, f) }) {
			v.errorf(o, "%s _source: field %q does not exist in %s", where, inc, index)
		}
	}
	return includes
}

// covers says whether a _source include pattern returns field: the field
// itself, an object holding it, or a wildcard pattern matching it.
func covers(pattern, field string) bool {
	if strings.Contains(pattern, "*") {
		ok, _ := path.Match(pattern, field)
		return ok || strings.HasPrefix(field, strings.TrimSuffix(pattern, "*"))
	}
	return field == pattern || strings.HasPrefix(field, pattern+".")
}

// sourceRefs lists the document fields a part of a Vega spec reads from a
// hit, in order of appearance: the X of every string "_source.X" (a field
// accessor) and of every "datum._source.X" in a string (an expression).
func sourceRefs(node any) []string {
	var out []string
	var walk func(any)
	walk = func(n any) {
		switch x := n.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(x[k])
			}
		case string:
			for _, m := range sourceRefRE.FindAllStringSubmatch(x, -1) {
				out = append(out, m[1])
			}
		}
	}
	walk(node)
	return out
}

var sourceRefRE = regexp.MustCompile(`(?:^|\bdatum\.)_source\.([A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z_@][A-Za-z0-9_@]*)*)`)

// sourceRef checks one field read from the hits of index.
func (v *validator) sourceRef(o Object, where, index string, fields map[string]string, includes []string, ref string) {
	if _, ok := fields[ref]; !ok {
		kind := "does not exist"
		if slices.ContainsFunc(slices.Collect(maps.Keys(fields)), func(f string) bool { return strings.HasPrefix(f, ref+".") }) {
			kind = "is an object, not a field"
		}
		v.errorf(o, "%s: reads _source.%s: field %q %s in %s", where, ref, ref, kind, index)
		return
	}
	if includes != nil && !slices.ContainsFunc(includes, func(inc string) bool { return covers(inc, ref) }) {
		v.errorf(o, "%s: reads _source.%s, which the query's _source does not return", where, ref)
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
			case "exists":
				if f, ok := cm["field"].(string); ok {
					v.checkField(o, where+" exists", index, fields, f, present)
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
