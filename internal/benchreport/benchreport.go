// Package benchreport records benchmark results for `make bench`: every
// benchmark measures a subject beside a baseline in the same run (these
// machines are noisy, so only ratios are comparable), several repetitions
// each, and appends one JSON line per benchmark to $HOURGLASS_BENCH_OUT.
// bench/report turns those lines into bench/results/<date>.json and a
// markdown table.
package benchreport

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// CPUTime is the user and system CPU time this process has used: around a
// run, how much of the machine's CPU the subject in this process took.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // cannot fail for RUSAGE_SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Result is one benchmark: subject and baseline samples in the same unit
// (higher is better, e.g. records/s), one sample per repetition.
type Result struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Subject  string    `json:"subject"`
	Baseline string    `json:"baseline"`
	Subj     []float64 `json:"subject_samples"`
	Base     []float64 `json:"baseline_samples"`
	Notes    string    `json:"notes,omitempty"`
	// Goal is the ratio this benchmark aims at (0: none); the chart marks it.
	Goal float64 `json:"goal,omitempty"`
}

// Median of samples.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ratio is median(subject) / median(baseline).
func (r Result) Ratio() float64 {
	b := Median(r.Base)
	if b == 0 {
		return 0
	}
	return Median(r.Subj) / b
}

// Write logs the result on tb and appends it to $HOURGLASS_BENCH_OUT if set.
func Write(tb testing.TB, r Result) {
	tb.Helper()
	tb.Logf("%s: %s median %.0f %s, %s median %.0f %s, ratio %.3f",
		r.Name, r.Subject, Median(r.Subj), r.Unit, r.Baseline, Median(r.Base), r.Unit, r.Ratio())
	path := os.Getenv("HOURGLASS_BENCH_OUT")
	if path == "" {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		tb.Fatalf("benchreport: encode %s: %v", r.Name, err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatalf("benchreport: open %s: %v", path, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s\n", b); err != nil {
		tb.Fatalf("benchreport: write %s: %v", path, err)
	}
}

// Reps is the number of repetitions ($HOURGLASS_BENCH_REPS, default 3).
func Reps() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("HOURGLASS_BENCH_REPS"), &n); err != nil || n < 1 {
		return 3
	}
	return n
}
