package metriceval

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

const cat = `
metrics:
  - name: m
    description: test.
    fields: [duration_ms, status, client_ip]
    aggregations:
      - {name: n, fn: count}
      - {name: errors, fn: count, where: [{field: status, op: gte, value: 500}]}
      - {name: ratio, fn: ratio, where: [{field: status, op: gte, value: 500}]}
      - {name: avg_d, fn: avg, field: duration_ms}
      - {name: max_d, fn: max, field: duration_ms}
      - {name: d, fn: percentiles, field: duration_ms, percentiles: [50, 90]}
      - {name: ips, fn: approx_distinct, field: client_ip}
`

func TestEvaluate(t *testing.T) {
	c, err := catalog.Parse([]byte(cat))
	require.NoError(t, err)
	m := c.Metrics[0]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []record.Record
	for i := range 10 {
		recs = append(recs, record.Record{Timestamp: t0.Add(time.Duration(i) * 5 * time.Second), Tenant: "a",
			Status: 200 + 300*(i%5/4), DurationMS: float64(i + 1), ClientIP: []string{"10.0.0.1", "10.0.0.2"}[i%2]})
	}
	recs = append(recs, record.Record{Timestamp: t0.Add(61 * time.Second), Tenant: "b", Status: 200, DurationMS: 7})
	res := Evaluate(m, recs, func(i int, d time.Duration) bool { return i != 9 || d == time.Hour })

	w := res.Windows[Key{Size: "1m", Start: t0, Group: "a"}]
	require.NotNil(t, w)
	require.EqualValues(t, 9, w.Samples)
	want := map[string]float64{"n": 9, "errors": 1, "ratio": 1.0 / 9, "avg_d": 5, "max_d": 9, "d_p50": 5, "d_p90": 9, "ips": 2}
	for _, wt := range w.Wants(m) {
		require.InDelta(t, want[wt.Field], wt.Value, 1e-12, wt.Field)
	}
	require.EqualValues(t, 1, res.Late[Key{Size: "1m", Start: t0, Group: "a"}])
	require.EqualValues(t, 10, res.Windows[Key{Size: "1h", Start: t0, Group: "a"}].Samples)
	require.EqualValues(t, 1, res.Windows[Key{Size: "1m", Start: t0.Add(time.Minute), Group: "b"}].Samples)

	doc := map[string]any{"metric": "m", "tenant": "a", "samples": 9.0,
		"window": map[string]any{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "size": "1m"},
		"n":      9.0, "errors": 1.0, "ratio": 1.0 / 9 * (1 + 1e-12), "avg_d": 5.0, "max_d": 9.0, "d_p50": 5.0, "d_p90": 9.0, "ips": 2.0}
	require.Empty(t, res.Compare(w, doc))
	doc["d_p50"] = 6.0 // rank 6 of 9 where 5 is wanted: within ceil(9/10000) = 1
	require.Empty(t, res.Compare(w, doc))
	doc["d_p50"], doc["n"], doc["ratio"] = 8.0, 8.0, 0.3
	require.Len(t, res.Compare(w, doc), 3)
	doc["d_p50"], doc["n"], doc["ratio"] = 5.0, 9.0, 1.0/9

	// approx_distinct: within 4·rsd but never above the values counted (9 IPs
	// in this window, 2 distinct), the job's clamp.
	require.Empty(t, res.Compare(w, doc))
	doc["ips"] = 3.0 // within the tolerance max(1, 4·rsd·2) = 1
	require.Empty(t, res.Compare(w, doc))
	few := Evaluate(m, recs[:1], func(int, time.Duration) bool { return true })
	w1 := few.Windows[Key{Size: "1m", Start: t0, Group: "a"}]
	doc1 := map[string]any{"metric": "m", "tenant": "a", "samples": 1.0,
		"window": map[string]any{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "size": "1m"},
		"n":      1.0, "errors": 0.0, "ratio": 0.0, "avg_d": 1.0, "max_d": 1.0, "d_p50": 1.0, "d_p90": 1.0, "ips": 1.0}
	require.Empty(t, few.Compare(w1, doc1))
	doc1["ips"] = 2.0 // within ±1 but above the single value: the clamp was not applied
	require.Equal(t, []string{"ips: got 2, more than the 1 values counted (the estimate is clamped)"}, few.Compare(w1, doc1))
	require.Equal(t, catalog.DocID("m", time.Minute, t0, "a"), res.DocID(w))
}

func TestWindowEnd(t *testing.T) {
	at := time.Date(2026, 1, 1, 2, 9, 59, 999_000_000, time.UTC)
	require.Equal(t, time.Date(2026, 1, 1, 2, 10, 0, 0, time.UTC), WindowEnd(at, time.Minute))
	require.Equal(t, time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), WindowEnd(at, time.Hour))
}

// A document from Document has exactly the fields catalog says a metric
// document has, and compares equal to its own window once through JSON.
func TestDocument(t *testing.T) {
	c := catalogtest.Shipped(t)
	g := gen.New(gen.Config{Seed: 4, Tenants: 2, Start: time.Date(2026, 1, 1, 0, 58, 0, 0, time.UTC), Rate: 20})
	recs := make([]record.Record, 3000)
	for i := range recs {
		recs[i] = g.Next()
	}
	for _, m := range c.Metrics {
		res := Evaluate(m, Filter(m, recs), nil)
		require.NotEmpty(t, res.Windows)
		for _, w := range res.Windows {
			doc := res.Document(w, time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC))
			keys := make([]string, 0, len(doc))
			for k := range doc {
				keys = append(keys, k)
			}
			require.ElementsMatch(t, m.DocumentFields(), keys, m.Name)
			b, err := json.Marshal(doc)
			require.NoError(t, err)
			var back map[string]any
			require.NoError(t, json.Unmarshal(b, &back))
			require.Empty(t, res.Compare(w, back), "%s %s", m.Name, w.Key)
			require.Equal(t, "2026-01-01T01:00:00.000Z", back[catalog.DocComputedAt])
		}
	}
}
