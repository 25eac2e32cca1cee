package catalog

import (
	"slices"
	"strings"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Route is a metric compiled for the router: which records it takes and what
// of them it writes to which topic.
type Route struct {
	Metric     string
	Topic      string
	Partitions int
	Match      func(*record.Record) bool // the metric's filter
	Fields     []string                  // projection, in order
}

// Project appends the projected JSON of r to dst.
func (rt *Route) Project(dst []byte, r *record.Record) []byte {
	return r.AppendProjection(dst, rt.Fields)
}

// Routes compiles every metric of the catalog for the router.
func (c *Catalog) Routes() []Route {
	out := make([]Route, 0, len(c.Metrics))
	for _, m := range c.Metrics {
		out = append(out, Route{
			Metric:     m.Name,
			Topic:      topology.MetricTopic(m.Name),
			Partitions: m.Partitions,
			Match:      CompileFilter(m.Filter),
			Fields:     m.Projection(),
		})
	}
	return out
}

// CompileFilter turns conditions into a Go predicate: true when all hold. An
// absent optional field satisfies only ne and not_in.
func CompileFilter(conds []Condition) func(*record.Record) bool {
	preds := make([]func(*record.Record) bool, len(conds))
	for i, c := range conds {
		preds[i] = compileCondition(c)
	}
	return func(r *record.Record) bool {
		for _, p := range preds {
			if !p(r) {
				return false
			}
		}
		return true
	}
}

func compileCondition(c Condition) func(*record.Record) bool {
	f, _ := record.Lookup(c.Field) // validated at load
	field := c.Field
	if f.Type == record.TypeInt || f.Type == record.TypeFloat {
		want, _ := c.Value.(float64)
		list := make([]float64, len(c.List))
		for i, v := range c.List {
			list[i], _ = v.(float64)
		}
		cmp := map[Op]func(v float64) bool{
			OpEq: func(v float64) bool { return v == want }, OpNe: func(v float64) bool { return v != want },
			OpLt: func(v float64) bool { return v < want }, OpLte: func(v float64) bool { return v <= want },
			OpGt: func(v float64) bool { return v > want }, OpGte: func(v float64) bool { return v >= want },
			OpIn: func(v float64) bool { return slices.Contains(list, v) }, OpNotIn: func(v float64) bool { return !slices.Contains(list, v) },
			OpExists: func(float64) bool { return true },
		}[c.Op]
		absent := c.Op == OpNe || c.Op == OpNotIn
		return func(r *record.Record) bool {
			v, ok := r.Number(field)
			if !ok {
				return absent
			}
			return cmp(v)
		}
	}
	want, _ := c.Value.(string)
	list := make([]string, len(c.List))
	for i, v := range c.List {
		list[i], _ = v.(string)
	}
	cmp := map[Op]func(v string) bool{
		OpEq: func(v string) bool { return v == want }, OpNe: func(v string) bool { return v != want },
		OpIn: func(v string) bool { return slices.Contains(list, v) }, OpNotIn: func(v string) bool { return !slices.Contains(list, v) },
		OpPrefix: func(v string) bool { return strings.HasPrefix(v, want) }, OpExists: func(string) bool { return true },
	}[c.Op]
	absent := c.Op == OpNe || c.Op == OpNotIn
	return func(r *record.Record) bool {
		v, ok := r.Text(field)
		if !ok {
			return absent
		}
		return cmp(v)
	}
}
