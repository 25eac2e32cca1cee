package benchreport

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedianRatio(t *testing.T) {
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 2, 3}))
	r := Result{Subj: []float64{50, 40, 60}, Base: []float64{100, 90, 110}}
	require.InDelta(t, 0.5, r.Ratio(), 1e-12)
	require.Zero(t, Result{Subj: []float64{1}}.Ratio())
}

func TestWriteAppends(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.jsonl")
	t.Setenv("HOURGLASS_BENCH_OUT", out)
	Write(t, Result{Name: "a", Subj: []float64{1}, Base: []float64{2}})
	Write(t, Result{Name: "b", Subj: []float64{1}, Base: []float64{2}})
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Result
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"a", "b"}, names)
}
