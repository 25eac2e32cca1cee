// Package telemetrytest reads metric values out of a Prometheus registry in
// tests: the sum of a family's series, or one series by its labels.
// prometheus/testutil reads one collector (ToFloat64) or counts series
// (GatherAndCount); services register their metrics on a registry, and a test
// that holds only the registry reads them here.
package telemetrytest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sum adds the values of every series of the counter or gauge family name
// (0 when the family has no series yet).
func Sum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	var sum float64
	for _, m := range family(t, g, name) {
		sum += value(m)
	}
	return sum
}

// Series returns the value of the counter or gauge series name{labels}: the
// first series whose labels include every pair given; false when none has.
func Series(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
series:
	for _, m := range family(t, g, name) {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue series
			}
		}
		return value(m), true
	}
	return 0, false
}

// Value is the value of the series of name whose label has value, 0 when
// none has (a counter not incremented yet).
func Value(t testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	v, _ := Series(t, g, name, map[string]string{label: value})
	return v
}

// Histogram returns the sample count and sum of the histogram family name,
// over all its series (0, 0 when it has none).
func Histogram(t testing.TB, g prometheus.Gatherer, name string) (count uint64, sum float64) {
	t.Helper()
	for _, m := range family(t, g, name) {
		if h := m.GetHistogram(); h != nil {
			count += h.GetSampleCount()
			sum += h.GetSampleSum()
		}
	}
	return count, sum
}

func family(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("telemetrytest: gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
