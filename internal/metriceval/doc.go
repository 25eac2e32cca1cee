package metriceval

// Documented approximation bounds checked by Want.Compare (they restate the
// catalog's Approximations):
//
//   - percentiles (Spark percentile_approx with accuracy A over n samples): the
//     value is one of the samples and its rank is within ceil(n/A) of ceil(p·n);
//   - approx_distinct (HyperLogLog++ with relative standard deviation rsd):
//     within HLLSigmas·rsd·exact of the exact count, and at least ±1;
//   - averages and ratios: RelTol (1e-9) relative; counts, sums, min, max: exact.
