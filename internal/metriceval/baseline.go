package metriceval

import (
	"fmt"
	"math"
	"slices"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// Baseline is the object a metric job writes at baseline.<output> of a
// document (internal/catalog doc.go, "Baselines"), computed here from its
// written definition — the module doc of metrics-jobs/hourglass_jobs/baseline.py —
// independently of that module: the ground truth the driver is tested
// against. Nil fields are JSON nulls.
//
// With n past values and the current value v (nil: null):
//
//   - n = 0: expected and spread null;
//   - mean_stddev: expected = mean, spread = sample standard deviation (n−1);
//     median_mad: expected = median, spread = catalog.MADScale × median(|x − median|);
//     spread null when n < 2;
//   - n < min_samples (or no spread): lower, upper, score null, never anomalous;
//   - otherwise lower, upper = expected ∓ z·spread, and with v not null:
//     spread > 0: score = (v − expected)/spread, anomalous when |score| ≥ z;
//     spread = 0 (a flat history): score 0 and not anomalous when v = expected,
//     else score null and anomalous.
type Baseline struct {
	Expected, Spread, Lower, Upper, Score *float64
	Anomaly                               bool
	Samples                               int

	value *float64 // the current value, for the score's tolerance
	z     float64
}

// EvaluateBaseline computes the baseline object of a document whose output
// value is value (nil: null) from past, the output's values in the look-back
// windows that have one (missing windows and null values left out: they are
// not samples).
func EvaluateBaseline(b catalog.Baseline, value *float64, past []float64) Baseline {
	out := Baseline{Samples: len(past), value: value, z: b.Z}
	n := len(past)
	if n == 0 {
		return out
	}
	var expected, spread float64
	switch b.Statistic {
	case catalog.StatMeanStddev:
		expected = sum(past) / float64(n)
		if n >= 2 {
			dev := make([]float64, n)
			for i, x := range past {
				dev[i] = (x - expected) * (x - expected)
			}
			spread = math.Sqrt(sum(dev) / float64(n-1))
		}
	case catalog.StatMedianMAD:
		expected = median(past)
		if n >= 2 {
			dev := make([]float64, n)
			for i, x := range past {
				dev[i] = math.Abs(x - expected)
			}
			spread = catalog.MADScale * median(dev)
		}
	default:
		panic(fmt.Sprintf("metriceval: unknown statistic %q", b.Statistic))
	}
	out.Expected = &expected
	if n < 2 {
		return out
	}
	out.Spread = &spread
	if n < b.MinSamples {
		return out
	}
	lower, upper := expected-b.Z*spread, expected+b.Z*spread
	out.Lower, out.Upper = &lower, &upper
	if value == nil {
		return out
	}
	v := *value
	switch {
	case spread > 0:
		score := (v - expected) / spread
		out.Score = &score
		out.Anomaly = math.Abs(score) >= b.Z
	case v == expected:
		zero := 0.0
		out.Score = &zero
	default:
		out.Anomaly = true
	}
	return out
}

// sum adds xs with Neumaier's compensation (within an ulp or two of the
// exact sum, whatever the order).
func sum(xs []float64) float64 {
	var s, c float64
	for _, x := range xs {
		t := s + x
		if math.Abs(s) >= math.Abs(x) {
			c += (s - t) + x
		} else {
			c += (x - t) + s
		}
		s = t
	}
	return s + c
}

// median of xs (not empty): the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// baselineFields are the keys of a baseline object, all always present.
var baselineFields = catalog.BaselineLeaves

// Compare checks a document's baseline object (decoded JSON: nil for null)
// against b and returns every mismatch. samples and null-ness are exact.
// Numbers may differ by RelTol relative to the magnitude of what they are
// computed from — expected, spread, lower and upper: |expected| + z·spread;
// score: that of (v − expected)/spread — because another implementation may
// add in another order (a mean) or round differently (v − expected near 0,
// expected − z·spread near 0): both are float64 computations of the same
// formula, a few ulps apart, never 1e-9 apart unless a rule differs. The
// anomaly flag is exact, except that either value is accepted when |score|
// is within the score's tolerance of z (see NearThreshold).
func (b Baseline) Compare(got any) []string {
	obj, ok := got.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("baseline object: got %v (%T)", got, got)}
	}
	var bad []string
	for k := range obj {
		if !slices.Contains(baselineFields, k) {
			bad = append(bad, fmt.Sprintf("%s: unexpected field (%v)", k, obj[k]))
		}
	}
	for _, k := range baselineFields {
		if _, ok := obj[k]; !ok {
			bad = append(bad, k+": missing")
		}
	}
	if n, ok := obj["samples"].(float64); !ok || n != float64(b.Samples) {
		bad = append(bad, fmt.Sprintf("samples: got %v, want %d", obj["samples"], b.Samples))
	}
	scale, scoreTol := b.tolerances()
	for _, f := range []struct {
		name string
		want *float64
		tol  float64
	}{{"expected", b.Expected, scale}, {"spread", b.Spread, scale}, {"lower", b.Lower, scale},
		{"upper", b.Upper, scale}, {"score", b.Score, scoreTol}} {
		v, present := obj[f.name]
		if !present {
			continue
		}
		switch g, isNum := v.(float64); {
		case f.want == nil && v != nil:
			bad = append(bad, fmt.Sprintf("%s: got %v, want null", f.name, v))
		case f.want == nil:
		case !isNum:
			bad = append(bad, fmt.Sprintf("%s: got %v (%T), want %v", f.name, v, v, *f.want))
		case math.Abs(g-*f.want) > f.tol:
			bad = append(bad, fmt.Sprintf("%s: got %v, want %v (± %.3g)", f.name, g, *f.want, f.tol))
		}
	}
	anomaly, isBool := obj["anomaly"].(bool)
	switch {
	case !isBool:
		bad = append(bad, fmt.Sprintf("anomaly: got %v (%T), want %v", obj["anomaly"], obj["anomaly"], b.Anomaly))
	case anomaly != b.Anomaly && !b.NearThreshold():
		bad = append(bad, fmt.Sprintf("anomaly: got %v, want %v (score %s, z %v)", anomaly, b.Anomaly, fmtNum(b.Score), b.z))
	}
	return bad
}

// NearThreshold reports whether |score| is so close to z that another
// implementation's rounding may flag the other way (Compare then accepts
// either flag). Tests whose flags must mean something check that none is.
func (b Baseline) NearThreshold() bool {
	if b.Score == nil {
		return false
	}
	_, tol := b.tolerances()
	return math.Abs(math.Abs(*b.Score)-b.z) <= tol
}

// tolerances returns the absolute tolerance of expected, spread, lower and
// upper, and that of the score.
func (b Baseline) tolerances() (scale, score float64) {
	if b.Expected == nil {
		return 0, 0
	}
	mag := math.Abs(*b.Expected)
	if b.Spread != nil {
		mag += b.z * *b.Spread
	}
	scale = RelTol * mag
	if b.Score != nil && b.Spread != nil && *b.Spread > 0 && b.value != nil {
		score = RelTol * math.Max(math.Abs(*b.Score), (math.Abs(*b.value)+math.Abs(*b.Expected))/(*b.Spread))
	}
	return scale, score
}

func fmtNum(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}
