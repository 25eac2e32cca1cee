package telemetrytest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestSumAndSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "h"})
	reg.MustRegister(c, g)
	require.Zero(t, Sum(t, reg, "c_total"))
	c.WithLabelValues("x", "1").Add(2)
	c.WithLabelValues("y", "1").Add(3)
	g.Set(-4)
	require.Equal(t, 5.0, Sum(t, reg, "c_total"))
	require.Equal(t, -4.0, Sum(t, reg, "g"))
	v, ok := Series(t, reg, "c_total", map[string]string{"a": "y"})
	require.True(t, ok)
	require.Equal(t, 3.0, v)
	_, ok = Series(t, reg, "c_total", map[string]string{"a": "z"})
	require.False(t, ok)
	require.Equal(t, 2.0, Value(t, reg, "c_total", "a", "x"))
	require.Zero(t, Value(t, reg, "c_total", "a", "z"))
	_, ok = Series(t, reg, "missing", nil)
	require.False(t, ok)

	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"a"})
	reg.MustRegister(h)
	n, sum := Histogram(t, reg, "h_seconds")
	require.Zero(t, n)
	require.Zero(t, sum)
	h.WithLabelValues("x").Observe(0.5)
	h.WithLabelValues("y").Observe(2)
	n, sum = Histogram(t, reg, "h_seconds")
	require.Equal(t, uint64(2), n)
	require.Equal(t, 2.5, sum)
}
