package metriceval

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

func rule(stat catalog.Statistic, minSamples int) catalog.Baseline {
	return catalog.Baseline{Output: "requests", Statistic: stat, Z: 3, MinSamples: minSamples,
		Lookback: catalog.Lookback{Kind: catalog.LookbackSameWindowOfDay, Count: 7}}
}

func num(v float64) *float64 { return &v }

// requireBaseline checks every field against hand-computed values (nil: null).
func requireBaseline(t *testing.T, got Baseline, expected, spread, lower, upper, score *float64, anomaly bool, samples int) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want *float64
	}{{"expected", got.Expected, expected}, {"spread", got.Spread, spread}, {"lower", got.Lower, lower},
		{"upper", got.Upper, upper}, {"score", got.Score, score}} {
		if f.want == nil {
			require.Nil(t, f.got, f.name)
			continue
		}
		require.NotNil(t, f.got, f.name)
		require.InDelta(t, *f.want, *f.got, 1e-12, f.name)
	}
	require.Equal(t, anomaly, got.Anomaly, "anomaly")
	require.Equal(t, samples, got.Samples, "samples")
}

func TestBaselineMedianMAD(t *testing.T) {
	b := rule(catalog.StatMedianMAD, 5)
	// sorted 9 10 11 12 12 13 50: median 12; |x − 12| sorted 0 0 1 1 2 3 38:
	// MAD 1, spread 1.4826; band 12 ∓ 3·1.4826 = 7.5522 .. 16.4478.
	past := []float64{12, 10, 50, 11, 9, 13, 12}
	got := EvaluateBaseline(b, num(20), past)
	requireBaseline(t, got, num(12), num(1.4826), num(7.5522), num(16.4478), num(8/1.4826), true, 7) // score 5.396
	got = EvaluateBaseline(b, num(14), past)
	requireBaseline(t, got, num(12), num(1.4826), num(7.5522), num(16.4478), num(2/1.4826), false, 7) // 1.349
	got = EvaluateBaseline(b, num(7), past)
	require.True(t, got.Anomaly, "a drop is anomalous too: score %v", *got.Score) // -3.37
	require.Less(t, *got.Score, -3.0)

	// An even count: sorted 1 3 5 7, median 4; |x − 4| = 3 1 1 3, sorted 1 1 3 3,
	// MAD 2, spread 2.9652.
	got = EvaluateBaseline(rule(catalog.StatMedianMAD, 4), num(4), []float64{7, 1, 5, 3})
	requireBaseline(t, got, num(4), num(2.9652), num(4-8.8956), num(4+8.8956), num(0), false, 4)
}

func TestBaselineMeanStddev(t *testing.T) {
	b := rule(catalog.StatMeanStddev, 3)
	// mean 4; squared deviations 4 0 4, / (n−1 = 2) = 4: spread 2; band −2 .. 10.
	past := []float64{2, 4, 6}
	got := EvaluateBaseline(b, num(10), past)
	requireBaseline(t, got, num(4), num(2), num(-2), num(10), num(3), true, 3) // |score| = z: anomalous
	got = EvaluateBaseline(b, num(9.9), past)
	requireBaseline(t, got, num(4), num(2), num(-2), num(10), num(2.95), false, 3)
	// mean 14; squared deviations 16 4 0 4 16 = 40, / 4 = 10: spread √10.
	got = EvaluateBaseline(rule(catalog.StatMeanStddev, 5), num(24), []float64{10, 12, 14, 16, 18})
	s := math.Sqrt(10)
	requireBaseline(t, got, num(14), num(s), num(14-3*s), num(14+3*s), num(10/s), true, 5) // 3.162
}

func TestBaselineFlatHistory(t *testing.T) {
	for _, stat := range []catalog.Statistic{catalog.StatMeanStddev, catalog.StatMedianMAD} {
		b := rule(stat, 5)
		past := []float64{30, 30, 30, 30, 30}
		requireBaseline(t, EvaluateBaseline(b, num(30), past), num(30), num(0), num(30), num(30), num(0), false, 5)
		// Any other value is anomalous, and has no score (it would be infinite).
		requireBaseline(t, EvaluateBaseline(b, num(31), past), num(30), num(0), num(30), num(30), nil, true, 5)
	}
	// Median/MAD: a history more than half flat is flat (|x − 30| = 0 0 0 1 1 0 0, MAD 0).
	got := EvaluateBaseline(rule(catalog.StatMedianMAD, 5), num(29), []float64{30, 30, 30, 31, 29, 30, 30})
	requireBaseline(t, got, num(30), num(0), num(30), num(30), nil, true, 7)
}

func TestBaselineTooFewSamples(t *testing.T) {
	b := rule(catalog.StatMedianMAD, 5)
	// n = 3 < 5: expected and spread from what exists (median 12; |x − 12| = 2 2 0,
	// MAD 2), no band, no score, never anomalous.
	got := EvaluateBaseline(b, num(1000), []float64{10, 14, 12})
	requireBaseline(t, got, num(12), num(2.9652), nil, nil, nil, false, 3)
	// n = 1: no spread either.
	got = EvaluateBaseline(rule(catalog.StatMeanStddev, 2), num(1000), []float64{7})
	requireBaseline(t, got, num(7), nil, nil, nil, nil, false, 1)
}

func TestBaselineNoHistory(t *testing.T) {
	for _, stat := range []catalog.Statistic{catalog.StatMeanStddev, catalog.StatMedianMAD} {
		got := EvaluateBaseline(rule(stat, 2), num(5000), nil)
		requireBaseline(t, got, nil, nil, nil, nil, nil, false, 0) // never a zero expected
	}
}

func TestBaselineNullValue(t *testing.T) {
	// An average of no values: the band exists, the score does not.
	got := EvaluateBaseline(rule(catalog.StatMeanStddev, 3), nil, []float64{2, 4, 6})
	requireBaseline(t, got, num(4), num(2), num(-2), num(10), nil, false, 3)
	got = EvaluateBaseline(rule(catalog.StatMedianMAD, 5), nil, []float64{30, 30, 30, 30, 30})
	requireBaseline(t, got, num(30), num(0), num(30), num(30), nil, false, 5)
}

func TestBaselineCompare(t *testing.T) {
	want := EvaluateBaseline(rule(catalog.StatMeanStddev, 5), num(24), []float64{10, 12, 14, 16, 18})
	s := math.Sqrt(10)
	doc := func() map[string]any {
		return map[string]any{"expected": 14.0, "spread": s, "lower": 14 - 3*s, "upper": 14 + 3*s,
			"score": 10 / s, "anomaly": true, "samples": 5.0}
	}
	require.Empty(t, want.Compare(doc()))
	d := doc()
	d["score"] = 10 / s * (1 + 1e-12) // another summation order: accepted
	d["expected"] = 14 * (1 + 1e-13)
	require.Empty(t, want.Compare(d))
	d = doc()
	d["score"], d["samples"], d["lower"] = 10/s*(1+1e-6), 4.0, nil
	require.Len(t, want.Compare(d), 3)
	d = doc()
	d["anomaly"] = false
	delete(d, "upper")
	d["extra"] = 1.0
	got := want.Compare(d)
	require.Len(t, got, 3)
	require.Equal(t, []string{"extra: unexpected field (1)", "upper: missing"}, got[:2])
	require.Contains(t, got[2], "anomaly: got false, want true (score 3.16227766016837")

	none := EvaluateBaseline(rule(catalog.StatMedianMAD, 5), num(5000), nil)
	require.Empty(t, none.Compare(map[string]any{"expected": nil, "spread": nil, "lower": nil, "upper": nil,
		"score": nil, "anomaly": false, "samples": 0.0}))
	require.Equal(t, []string{"expected: got 0, want null"}, none.Compare(map[string]any{"expected": 0.0, "spread": nil,
		"lower": nil, "upper": nil, "score": nil, "anomaly": false, "samples": 0.0}), "a zero is not a missing history")

	// |score| = z exactly: another implementation may round to either side.
	edge := EvaluateBaseline(rule(catalog.StatMeanStddev, 3), num(10), []float64{2, 4, 6})
	require.True(t, edge.NearThreshold())
	require.False(t, want.NearThreshold())
	require.Empty(t, edge.Compare(map[string]any{"expected": 4.0, "spread": 2.0, "lower": -2.0, "upper": 10.0,
		"score": 3 - 1e-15, "anomaly": false, "samples": 3.0}))
}
