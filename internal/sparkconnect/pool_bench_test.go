//go:build bench

package sparkconnect

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestBenchPoolLatency: latency of a small query (SELECT over a 10-row
// range) through the pool's HAProxy beside the same client talking to one
// server directly, same run, warm sessions. Reported as inverse latency
// (higher is better), so the ratio is direct/through-HAProxy: 0.95 means
// 5 % overhead.
func TestBenchPoolLatency(t *testing.T) {
	pool := stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL")
	direct := stacktest.Get(t, "HOURGLASS_SPARK_CONNECT")
	const queries = 200
	open := func(url string) *Session {
		cfg := DefaultConfig()
		cfg.URL = url
		c, err := New(cfg, nil)
		require.NoError(t, err)
		s, err := c.Open(context.Background())
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		for range 20 { // warm: plan cache, connection, JIT
			run(t, s)
		}
		return s
	}
	viaPool, viaDirect := open(pool), open(direct)
	p50 := benchreport.Result{Name: "Spark Connect small query, p50", Unit: "1/s (inverse latency)",
		Subject: "through HAProxy (pool)", Baseline: "direct to one server",
		Notes: "SELECT sum(id) FROM range(10), warm session, " + strconv.Itoa(queries) + " queries per repetition, alternating"}
	p95 := p50
	p95.Name = "Spark Connect small query, p95"
	for range benchreport.Reps() {
		var a, b []float64
		for range queries { // alternate so both see the same machine
			a = append(a, run(t, viaPool))
			b = append(b, run(t, viaDirect))
		}
		p50.Subj, p50.Base = append(p50.Subj, 1/quantile(a, 0.50)), append(p50.Base, 1/quantile(b, 0.50))
		p95.Subj, p95.Base = append(p95.Subj, 1/quantile(a, 0.95)), append(p95.Base, 1/quantile(b, 0.95))
	}
	benchreport.Write(t, p50)
	benchreport.Write(t, p95)
}

func run(t *testing.T, s *Session) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	tbl, err := s.SQL(ctx, "SELECT sum(id) AS s FROM range(10)")
	require.NoError(t, err)
	took := time.Since(began).Seconds()
	require.EqualValues(t, 1, tbl.NumRows())
	tbl.Release()
	return took
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}
