package catalog

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Defaults applied when neither the metric nor the file's `defaults` set a key.
var builtinDefaults = defaults{
	windows:         []Duration{{time.Minute}, {time.Hour}},
	allowedLateness: Duration{10 * time.Minute},
	freshnessSLA:    Duration{time.Hour},
	partitions:      3,
	groupBy:         []string{record.FieldTenant},
}

type defaults struct {
	windows         []Duration
	allowedLateness Duration
	freshnessSLA    Duration
	partitions      int
	groupBy         []string
}

// parser walks the YAML node tree so that every error can name its line, and
// collects all errors instead of stopping at the first.
type parser struct {
	errs []error
}

// where describes the place of an error: "metric \"x\"" or "defaults".
func (p *parser) errorf(ctx string, n *yaml.Node, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = fmt.Sprintf("key %q: %s", key, msg)
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, fmt.Errorf("%s: line %d: %s", ctx, line, msg))
}

// mapping returns a mapping node's values by key, reporting unknown and
// duplicate keys.
func (p *parser) mapping(ctx string, n *yaml.Node, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(ctx, n, "", "must be a mapping")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(allowed, k.Value):
			p.errorf(ctx, k, k.Value, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.errorf(ctx, k, k.Value, "duplicate key")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) catalog(doc *yaml.Node) *Catalog {
	c := &Catalog{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errorf("catalog", doc, "", "empty document")
		return c
	}
	top := p.mapping("catalog", doc.Content[0], "defaults", "metrics")
	d := builtinDefaults
	if n := top["defaults"]; n != nil {
		d = p.defaults(n)
	}
	metrics := top["metrics"]
	if metrics == nil || metrics.Kind != yaml.SequenceNode || len(metrics.Content) == 0 {
		p.errorf("catalog", doc.Content[0], "metrics", "a non-empty list of metrics is required")
		return c
	}
	seen := map[string]int{}
	for _, mn := range metrics.Content {
		m := p.metric(mn, d)
		if m.Name == "" {
			continue
		}
		if line, dup := seen[m.Name]; dup {
			p.errorf(fmt.Sprintf("metric %q", m.Name), mn, "name", "duplicate metric (first at line %d)", line)
			continue
		}
		seen[m.Name] = mn.Line
		c.Metrics = append(c.Metrics, m)
	}
	return c
}

func (p *parser) defaults(n *yaml.Node) defaults {
	const ctx = "defaults"
	d := builtinDefaults
	kv := p.mapping(ctx, n, "windows", "allowed_lateness", "freshness_sla", "partitions", "group_by")
	if v := kv["windows"]; v != nil {
		d.windows = p.windows(ctx, v)
	}
	if v := kv["allowed_lateness"]; v != nil {
		d.allowedLateness = p.duration(ctx, "allowed_lateness", v)
	}
	if v := kv["freshness_sla"]; v != nil {
		d.freshnessSLA = p.duration(ctx, "freshness_sla", v)
	}
	if v := kv["partitions"]; v != nil {
		d.partitions = p.partitions(ctx, v)
	}
	if v := kv["group_by"]; v != nil {
		d.groupBy = p.groupBy(ctx, v)
	}
	return d
}

func (p *parser) metric(n *yaml.Node, d defaults) Metric {
	m := Metric{Line: n.Line}
	ctx := fmt.Sprintf("metric at line %d", n.Line)
	if name := scalarValue(n, "name"); nameRE.MatchString(name) {
		ctx = fmt.Sprintf("metric %q", name) // name errors in every message, even key errors
	}
	kv := p.mapping(ctx, n, "name", "description", "filter", "fields", "group_by", "windows",
		"aggregations", "allowed_lateness", "freshness_sla", "partitions", "baselines")
	if v := kv["name"]; v == nil {
		p.errorf(ctx, n, "name", "required")
		return m
	} else {
		m.Name = p.str(ctx, "name", v)
		if m.Name != "" && !nameRE.MatchString(m.Name) {
			p.errorf(ctx, v, "name", "%q must match %s", m.Name, nameRE)
			m.Name = ""
			return m
		}
		ctx = fmt.Sprintf("metric %q", m.Name)
	}
	if v := kv["description"]; v != nil {
		m.Description = p.str(ctx, "description", v)
	}
	if m.Description == "" {
		p.errorf(ctx, n, "description", "required: say what the metric means to a customer")
	}

	m.GroupBy, m.Windows, m.AllowedLateness, m.FreshnessSLA, m.Partitions =
		d.groupBy, d.windows, d.allowedLateness, d.freshnessSLA, d.partitions
	if v := kv["group_by"]; v != nil {
		m.GroupBy = p.groupBy(ctx, v)
	}
	if v := kv["windows"]; v != nil {
		m.Windows = p.windows(ctx, v)
	}
	if v := kv["allowed_lateness"]; v != nil {
		m.AllowedLateness = p.duration(ctx, "allowed_lateness", v)
	}
	if v := kv["freshness_sla"]; v != nil {
		m.FreshnessSLA = p.duration(ctx, "freshness_sla", v)
	}
	if v := kv["partitions"]; v != nil {
		m.Partitions = p.partitions(ctx, v)
	}
	if m.FreshnessSLA.Duration <= 0 {
		p.errorf(ctx, n, "freshness_sla", "must be > 0")
	}

	if v := kv["filter"]; v != nil {
		m.Filter = p.conditions(ctx, "filter", v)
	}
	if v := kv["fields"]; v != nil {
		for _, f := range p.strList(ctx, "fields", v) {
			if _, ok := record.Lookup(f); !ok {
				p.errorf(ctx, v, "fields", "unknown record field %q", f)
				continue
			}
			if slices.Contains(m.Fields, f) {
				p.errorf(ctx, v, "fields", "field %q listed twice", f)
				continue
			}
			m.Fields = append(m.Fields, f)
		}
	}

	av := kv["aggregations"]
	if av == nil || av.Kind != yaml.SequenceNode || len(av.Content) == 0 {
		p.errorf(ctx, n, "aggregations", "a non-empty list is required")
		return m
	}
	projected := m.Projection()
	outputs := map[string]bool{}
	for _, an := range av.Content {
		a := p.aggregation(ctx, an)
		if a.Fn == "" {
			continue
		}
		if a.Field != "" && !slices.Contains(projected, a.Field) {
			p.errorf(ctx, an, "field", "aggregation %q reads %q, which is not projected: add it to `fields`", a.Name, a.Field)
		}
		for _, c := range a.Where {
			if !slices.Contains(projected, c.Field) {
				p.errorf(ctx, an, "where", "aggregation %q tests %q, which is not projected: add it to `fields`", a.Name, c.Field)
			}
		}
		for _, o := range a.Outputs() {
			if outputs[o] {
				p.errorf(ctx, an, "name", "output %q produced twice", o)
			}
			outputs[o] = true
		}
		m.Aggregations = append(m.Aggregations, a)
	}
	if v := kv["baselines"]; v != nil {
		m.Baselines = p.baselines(ctx, v, m)
	}
	return m
}

// Bounds of a baseline's lookback.
const (
	MaxLookbackDays    = 28
	MaxLookbackWindows = 1000
)

func (p *parser) baselines(ctx string, n *yaml.Node, m Metric) []Baseline {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(ctx, n, "baselines", "must be a non-empty list of {output, window, lookback, statistic, anomaly}")
		return nil
	}
	var out []Baseline
	seen := map[string]int{}
	for _, bn := range n.Content {
		b, ok := p.baseline(ctx, bn, m)
		if b.Output == "" {
			continue
		}
		if line, dup := seen[b.Output]; dup {
			p.errorf(ctx, bn, "baselines", "output %q has a baseline already (line %d): one baseline per output", b.Output, line)
			continue
		}
		seen[b.Output] = bn.Line
		if ok {
			out = append(out, b)
		}
	}
	return out
}

func (p *parser) baseline(ctx string, n *yaml.Node, m Metric) (Baseline, bool) {
	b := Baseline{Line: n.Line}
	kv := p.mapping(ctx+": baselines", n, "output", "window", "lookback", "statistic", "anomaly")
	if n.Kind != yaml.MappingNode {
		return Baseline{}, false
	}
	if v := kv["output"]; v != nil {
		b.Output = p.str(ctx, "output", v)
	}
	outputs := m.Outputs()
	if !slices.Contains(outputs, b.Output) {
		p.errorf(ctx, n, "output", "baseline of %q: not a numeric output of the metric (one of %s)", b.Output, strings.Join(outputs, ", "))
		return Baseline{}, false
	}
	bctx := fmt.Sprintf("%s: baseline %q", ctx, b.Output)
	ok := true
	switch v := kv["window"]; {
	case v != nil:
		b.Window = p.duration(bctx, "window", v)
		if b.Window.Duration > 0 && !slices.Contains(m.Windows, b.Window) {
			p.errorf(bctx, v, "window", "%s is not a window of the metric (%s)", b.Window, durations(m.Windows))
			ok = false
		}
	case len(m.Windows) == 1:
		b.Window = m.Windows[0]
	default:
		p.errorf(bctx, n, "window", "required: the metric has windows %s; say which one the baseline applies to", durations(m.Windows))
		ok = false
	}

	if v := kv["lookback"]; v == nil {
		p.errorf(bctx, n, "lookback", "required: {same_window_of_day: {days: N}} or {last_windows: N}")
		ok = false
	} else if lb, good := p.lookback(bctx, v); good {
		b.Lookback = lb
	} else {
		ok = false
	}

	if v := kv["statistic"]; v == nil {
		p.errorf(bctx, n, "statistic", "required: mean_stddev or median_mad")
		ok = false
	} else {
		b.Statistic = Statistic(p.str(bctx, "statistic", v))
		if b.Statistic != StatMeanStddev && b.Statistic != StatMedianMAD {
			p.errorf(bctx, v, "statistic", "unknown statistic %q (one of mean_stddev, median_mad)", b.Statistic)
			ok = false
		}
	}

	v := kv["anomaly"]
	if v == nil {
		p.errorf(bctx, n, "anomaly", "required: {z: 3.0, min_samples: K}")
		return b, false
	}
	akv := p.mapping(bctx+": anomaly", v, "z", "min_samples")
	if zn := akv["z"]; zn == nil {
		p.errorf(bctx, v, "anomaly", "z is required (anomalous when |score| >= z)")
		ok = false
	} else if z, err := strconv.ParseFloat(zn.Value, 64); err != nil || zn.Kind != yaml.ScalarNode || zn.Tag == "!!str" ||
		math.IsNaN(z) || z <= 0 || z > 100 {
		p.errorf(bctx, zn, "anomaly", "z %q must be a number in (0, 100]", zn.Value)
		ok = false
	} else {
		b.Z = z
	}
	if mn := akv["min_samples"]; mn == nil {
		p.errorf(bctx, v, "anomaly", "min_samples is required (the fewest past windows that make a score)")
		ok = false
	} else {
		var good bool
		b.MinSamples, good = p.intOK(bctx, "anomaly", mn)
		switch {
		case !good:
			ok = false
		case b.MinSamples < 2:
			p.errorf(bctx, mn, "anomaly", "min_samples %d must be at least 2 (a spread needs two values)", b.MinSamples)
			ok = false
		case b.Lookback.Count > 0 && b.MinSamples > b.Lookback.Samples():
			p.errorf(bctx, mn, "anomaly", "min_samples %d exceeds the %d past windows the lookback names", b.MinSamples, b.Lookback.Samples())
			ok = false
		}
	}
	return b, ok
}

func (p *parser) lookback(ctx string, n *yaml.Node) (Lookback, bool) {
	kv := p.mapping(ctx+": lookback", n, string(LookbackSameWindowOfDay), string(LookbackLastWindows))
	if len(kv) != 1 {
		if n.Kind == yaml.MappingNode {
			p.errorf(ctx, n, "lookback", "exactly one of same_window_of_day: {days: N} or last_windows: N")
		}
		return Lookback{}, false
	}
	if v := kv[string(LookbackSameWindowOfDay)]; v != nil {
		dkv := p.mapping(ctx+": lookback: same_window_of_day", v, "days")
		dn := dkv["days"]
		if dn == nil {
			if v.Kind == yaml.MappingNode {
				p.errorf(ctx, v, "lookback", "same_window_of_day needs days: N (1-%d)", MaxLookbackDays)
			}
			return Lookback{}, false
		}
		d, good := p.intOK(ctx, "lookback", dn)
		if !good {
			return Lookback{}, false
		}
		if d < 1 || d > MaxLookbackDays {
			p.errorf(ctx, dn, "lookback", "same_window_of_day days %d must be 1-%d", d, MaxLookbackDays)
			return Lookback{}, false
		}
		return Lookback{Kind: LookbackSameWindowOfDay, Count: d}, true
	}
	v := kv[string(LookbackLastWindows)]
	w, good := p.intOK(ctx, "lookback", v)
	if !good {
		return Lookback{}, false
	}
	if w < 1 || w > MaxLookbackWindows {
		p.errorf(ctx, v, "lookback", "last_windows %d must be 1-%d", w, MaxLookbackWindows)
		return Lookback{}, false
	}
	return Lookback{Kind: LookbackLastWindows, Count: w}, true
}

func durations(ds []Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func (p *parser) aggregation(ctx string, n *yaml.Node) Aggregation {
	var a Aggregation
	kv := p.mapping(ctx, n, "name", "fn", "field", "where", "percentiles", "accuracy", "rsd")
	if v := kv["name"]; v != nil {
		a.Name = p.str(ctx, "name", v)
	}
	if !outputRE.MatchString(a.Name) || slices.Contains(reserved, a.Name) {
		p.errorf(ctx, n, "name", "aggregation name %q must match %s and not be one of %s", a.Name, outputRE, strings.Join(reserved, ", "))
		return Aggregation{}
	}
	actx := fmt.Sprintf("%s: aggregation %q", ctx, a.Name)
	if v := kv["fn"]; v != nil {
		a.Fn = Fn(p.str(actx, "fn", v))
	}
	if v := kv["field"]; v != nil {
		a.Field = p.str(actx, "field", v)
	}
	if v := kv["where"]; v != nil {
		a.Where = p.conditions(actx, "where", v)
	}
	fieldType := record.Type("")
	if a.Field != "" {
		f, ok := record.Lookup(a.Field)
		if !ok {
			p.errorf(actx, kv["field"], "field", "unknown record field %q", a.Field)
			return Aggregation{}
		}
		fieldType = f.Type
	}
	numeric := fieldType == record.TypeInt || fieldType == record.TypeFloat
	switch a.Fn {
	case FnCount:
		if a.Field != "" {
			p.errorf(actx, n, "field", "count takes no field (use `where` to count a subset)")
		}
	case FnRatio:
		if a.Field != "" {
			p.errorf(actx, n, "field", "ratio takes no field: it is the share of records matching `where`")
		}
		if len(a.Where) == 0 {
			p.errorf(actx, n, "where", "ratio needs `where`: the records it measures the share of")
		}
	case FnSum, FnAvg, FnMin, FnMax, FnPercentiles:
		if !numeric {
			p.errorf(actx, n, "field", "%s needs a numeric field, got %q", a.Fn, a.Field)
		}
	case FnApproxDistinct:
		if a.Field == "" {
			p.errorf(actx, n, "field", "approx_distinct needs a field")
		}
	default:
		p.errorf(actx, kv["fn"], "fn", "unknown function %q (one of count, sum, avg, min, max, percentiles, approx_distinct, ratio)", a.Fn)
		return Aggregation{}
	}

	if v := kv["percentiles"]; v != nil {
		if a.Fn != FnPercentiles {
			p.errorf(actx, v, "percentiles", "only for fn: percentiles")
		}
		for _, pn := range v.Content {
			f, err := strconv.ParseFloat(pn.Value, 64)
			if err != nil || f <= 0 || f >= 100 {
				p.errorf(actx, pn, "percentiles", "%q must be a number in (0, 100)", pn.Value)
				continue
			}
			a.Percentiles = append(a.Percentiles, f)
		}
	}
	if a.Fn == FnPercentiles && len(a.Percentiles) == 0 && kv["percentiles"] == nil {
		p.errorf(actx, n, "percentiles", "required for fn: percentiles, e.g. [50, 95, 99]")
	}
	a.Accuracy = 10000
	if v := kv["accuracy"]; v != nil {
		if a.Fn != FnPercentiles {
			p.errorf(actx, v, "accuracy", "only for fn: percentiles")
		}
		a.Accuracy = p.int(actx, "accuracy", v)
		if a.Accuracy < 100 || a.Accuracy > 1_000_000 {
			p.errorf(actx, v, "accuracy", "must be 100-1000000")
		}
	}
	a.RSD = 0.01
	if v := kv["rsd"]; v != nil {
		if a.Fn != FnApproxDistinct {
			p.errorf(actx, v, "rsd", "only for fn: approx_distinct")
		}
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || f < 0.005 || f > 0.2 {
			p.errorf(actx, v, "rsd", "must be a number in [0.005, 0.2]")
		}
		a.RSD = f
	}
	if a.Fn != FnPercentiles {
		a.Accuracy = 0
	}
	if a.Fn != FnApproxDistinct {
		a.RSD = 0
	}
	return a
}

func (p *parser) conditions(ctx, key string, n *yaml.Node) []Condition {
	if n.Kind != yaml.SequenceNode {
		p.errorf(ctx, n, key, "must be a list of {field, op, value} conditions")
		return nil
	}
	var out []Condition
	for _, cn := range n.Content {
		if c, ok := p.condition(ctx, key, cn); ok {
			out = append(out, c)
		}
	}
	return out
}

func (p *parser) condition(ctx, key string, n *yaml.Node) (Condition, bool) {
	var c Condition
	kv := p.mapping(ctx+": "+key, n, "field", "op", "value", "values")
	if v := kv["field"]; v != nil {
		c.Field = p.str(ctx, key, v)
	}
	f, ok := record.Lookup(c.Field)
	if !ok {
		p.errorf(ctx, n, key, "unknown record field %q", c.Field)
		return c, false
	}
	if v := kv["op"]; v != nil {
		c.Op = Op(p.str(ctx, key, v))
	}
	numeric := f.Type == record.TypeInt || f.Type == record.TypeFloat
	text := f.Type == record.TypeString || f.Type == record.TypeIP
	valid := map[Op]bool{OpEq: numeric || text, OpNe: numeric || text, OpIn: numeric || text, OpNotIn: numeric || text,
		OpLt: numeric, OpLte: numeric, OpGt: numeric, OpGte: numeric, OpPrefix: text, OpExists: numeric || text}
	if !valid[c.Op] {
		p.errorf(ctx, n, key, "op %q is not valid for %s field %q", c.Op, f.Type, c.Field)
		return c, false
	}
	value := func(v *yaml.Node) (any, bool) {
		if v.Kind != yaml.ScalarNode {
			p.errorf(ctx, v, key, "value for %q must be a scalar", c.Field)
			return nil, false
		}
		if numeric {
			x, err := strconv.ParseFloat(v.Value, 64)
			if err != nil || v.Tag == "!!str" {
				p.errorf(ctx, v, key, "value %q for %s field %q must be a number", v.Value, f.Type, c.Field)
				return nil, false
			}
			return x, true
		}
		return v.Value, true
	}
	switch c.Op {
	case OpExists:
		if kv["value"] != nil || kv["values"] != nil {
			p.errorf(ctx, n, key, "exists takes no value")
			return c, false
		}
	case OpIn, OpNotIn:
		vs := kv["values"]
		if vs == nil || vs.Kind != yaml.SequenceNode || len(vs.Content) == 0 || kv["value"] != nil {
			p.errorf(ctx, n, key, "%s needs `values`, a non-empty list", c.Op)
			return c, false
		}
		for _, vn := range vs.Content {
			x, ok := value(vn)
			if !ok {
				return c, false
			}
			c.List = append(c.List, x)
		}
	default:
		v := kv["value"]
		if v == nil || kv["values"] != nil {
			p.errorf(ctx, n, key, "%s needs `value`", c.Op)
			return c, false
		}
		x, ok := value(v)
		if !ok {
			return c, false
		}
		c.Value = x
	}
	return c, true
}

// scalarValue returns the value of key in a mapping node, or "".
func scalarValue(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func (p *parser) windows(ctx string, n *yaml.Node) []Duration {
	var out []Duration
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(ctx, n, "windows", "must be a non-empty list of durations, e.g. [1m, 1h]")
		return nil
	}
	for _, wn := range n.Content {
		d := p.duration(ctx, "windows", wn)
		if d.Duration <= 0 {
			continue
		}
		switch {
		case d.Duration%time.Second != 0:
			p.errorf(ctx, wn, "windows", "%s is not a whole number of seconds", d)
		case (24*time.Hour)%d.Duration != 0:
			p.errorf(ctx, wn, "windows", "%s does not divide a day evenly (windows align to midnight UTC)", d)
		case slices.Contains(out, d):
			p.errorf(ctx, wn, "windows", "%s listed twice", d)
		default:
			out = append(out, d)
		}
	}
	return out
}

func (p *parser) groupBy(ctx string, n *yaml.Node) []string {
	fields := p.strList(ctx, "group_by", n)
	if len(fields) == 0 || fields[0] != record.FieldTenant {
		p.errorf(ctx, n, "group_by", "must start with tenant: metrics are per customer")
		return builtinDefaults.groupBy
	}
	for _, f := range fields {
		rf, ok := record.Lookup(f)
		if !ok || rf.Type == record.TypeTimestamp {
			p.errorf(ctx, n, "group_by", "%q is not a groupable record field", f)
		}
	}
	return fields
}

func (p *parser) partitions(ctx string, n *yaml.Node) int {
	v := p.int(ctx, "partitions", n)
	if v < 1 || v > 1024 {
		p.errorf(ctx, n, "partitions", "must be 1-1024")
		return builtinDefaults.partitions
	}
	return v
}

func (p *parser) duration(ctx, key string, n *yaml.Node) Duration {
	s := p.str(ctx, key, n)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.errorf(ctx, n, key, "%q is not a duration like 90s, 10m or 1h", s)
		return Duration{}
	}
	return Duration{d}
}

func (p *parser) str(ctx, key string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(ctx, n, key, "must be a string")
		return ""
	}
	return n.Value
}

func (p *parser) int(ctx, key string, n *yaml.Node) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.errorf(ctx, n, key, "must be an integer")
	}
	return v
}

// intOK is int, saying whether the node was an integer.
func (p *parser) intOK(ctx, key string, n *yaml.Node) (int, bool) {
	before := len(p.errs)
	v := p.int(ctx, key, n)
	return v, len(p.errs) == before
}

func (p *parser) strList(ctx, key string, n *yaml.Node) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(ctx, n, key, "must be a list")
		return nil
	}
	var out []string
	for _, e := range n.Content {
		out = append(out, p.str(ctx, key, e))
	}
	return out
}
