package main

// The report's baseline section (issue 17): one tenant's windows of one
// baselined output, their expected band and their anomalous windows, printed
// and drawn as an SVG chart (Kibana cannot run on the demo machine). Not yet
// called by main: see reportBaseline for what the caller passes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/record"
)

// bandWindow is one window of a baselined output, as its document holds it.
type bandWindow struct {
	Start, End time.Time
	Value      *float64 // null: no value in the window
	// HasBaseline: the document carries the baseline object (documents
	// written before the baseline was declared do not).
	HasBaseline                   bool
	Expected, Lower, Upper, Score *float64 // null when not computable (baseline.py)
	Anomaly                       bool
	Samples                       int // past windows found
	// Settled: the window's end plus the metric's allowed lateness has
	// passed. Before that the job still rewrites the document (update mode)
	// with a value and a verdict that are not final: a count of an hour in
	// progress is low, so its anomaly is provisional.
	Settled bool
}

func (w bandWindow) hasBand() bool { return w.Lower != nil && w.Upper != nil }

// bandSummary counts what a band report found.
type bandSummary struct {
	Windows     int // windows of the baseline's size
	WithBand    int // with lower and upper (at least min_samples past windows)
	Anomalies   int // settled anomalous windows
	Provisional int // anomalous windows not settled yet
}

// bandWindows reads the windows of baseline b from documents of metric m
// (their _source, as Elasticsearch returns it) of one tenant, oldest first.
// Documents of another window size are skipped; documents of another tenant
// or group, two documents of one window, or a malformed field are errors.
func bandWindows(m catalog.Metric, b catalog.Baseline, tenant string, docs []map[string]any, now time.Time) ([]bandWindow, error) {
	if !slices.Contains(m.GroupBy, record.FieldTenant) {
		return nil, fmt.Errorf("baseline %s.%s: the metric is not grouped by %s", m.Name, b.Output, record.FieldTenant)
	}
	size := b.Window.String()
	var out []bandWindow
	var group []string
	seen := map[time.Time]bool{}
	for i, doc := range docs {
		win, _ := doc[catalog.DocWindow].(map[string]any)
		if win == nil {
			return nil, fmt.Errorf("baseline %s.%s: document %d: no %s object", m.Name, b.Output, i, catalog.DocWindow)
		}
		if win[catalog.WindowSize] != size {
			continue
		}
		if doc[record.FieldTenant] != tenant {
			return nil, fmt.Errorf("baseline %s.%s: document %d is of %s %v, not %s", m.Name, b.Output, i, record.FieldTenant, doc[record.FieldTenant], tenant)
		}
		g := make([]string, len(m.GroupBy))
		for k, f := range m.GroupBy {
			g[k] = fmt.Sprint(doc[f])
		}
		if group == nil {
			group = g
		} else if !slices.Equal(group, g) {
			return nil, fmt.Errorf("baseline %s.%s: documents of several groups (%s and %s): pass one group's",
				m.Name, b.Output, strings.Join(group, "/"), strings.Join(g, "/"))
		}
		var w bandWindow
		var err error
		if w.Start, err = docTime(win[catalog.WindowStart]); err != nil {
			return nil, fmt.Errorf("baseline %s.%s: document %d: %s.%s: %w", m.Name, b.Output, i, catalog.DocWindow, catalog.WindowStart, err)
		}
		if w.End, err = docTime(win[catalog.WindowEnd]); err != nil {
			return nil, fmt.Errorf("baseline %s.%s: document %d: %s.%s: %w", m.Name, b.Output, i, catalog.DocWindow, catalog.WindowEnd, err)
		}
		if seen[w.Start] {
			return nil, fmt.Errorf("baseline %s.%s: two documents of the window starting %s", m.Name, b.Output, w.Start.Format(time.RFC3339))
		}
		seen[w.Start] = true
		if w.Value, err = docNumber(doc[b.Output]); err != nil {
			return nil, fmt.Errorf("baseline %s.%s: document %d: %s: %w", m.Name, b.Output, i, b.Output, err)
		}
		objs, _ := doc[catalog.BaselineField].(map[string]any)
		if obj, ok := objs[b.Output].(map[string]any); ok {
			w.HasBaseline = true
			for _, f := range []struct {
				leaf string
				dst  **float64
			}{{catalog.BaselineExpected, &w.Expected}, {catalog.BaselineLower, &w.Lower}, {catalog.BaselineUpper, &w.Upper}, {catalog.BaselineScore, &w.Score}} {
				if *f.dst, err = docNumber(obj[f.leaf]); err != nil {
					return nil, fmt.Errorf("baseline %s.%s: document %d: %s.%s.%s: %w", m.Name, b.Output, i, catalog.BaselineField, b.Output, f.leaf, err)
				}
			}
			w.Anomaly, _ = obj[catalog.BaselineAnomaly].(bool)
			if n, err := docNumber(obj[catalog.BaselineSamples]); err == nil && n != nil {
				w.Samples = int(*n)
			}
		}
		w.Settled = !w.End.Add(m.AllowedLateness.Duration).After(now)
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("baseline %s.%s: no document of a %s window for %s", m.Name, b.Output, size, tenant)
	}
	slices.SortFunc(out, func(a, b bandWindow) int { return a.Start.Compare(b.Start) })
	return out, nil
}

func docTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, have %v", v)
	}
	return time.Parse(time.RFC3339, s)
}

// docNumber reads a JSON number (float64) or null (nil; a missing key too).
func docNumber(v any) (*float64, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		return &x, nil
	}
	return nil, fmt.Errorf("want a number or null, have %v", v)
}

// describeBaseline says in words how b makes its band.
func describeBaseline(b catalog.Baseline) string {
	stat := fmt.Sprintf("mean ± %g × standard deviation", b.Z)
	if b.Statistic == catalog.StatMedianMAD {
		stat = fmt.Sprintf("median ± %g × %g·MAD", b.Z, catalog.MADScale)
	}
	past := fmt.Sprintf("the %d previous windows", b.Lookback.Count)
	if b.Lookback.Kind == catalog.LookbackSameWindowOfDay {
		past = fmt.Sprintf("the same window of the %d previous days", b.Lookback.Count)
	}
	return fmt.Sprintf("%s of %s, at least %d found", stat, past, b.MinSamples)
}

// printBand prints the band of the newest settled window that has one (or,
// when no settled window has one, of the newest window with a band, marked
// provisional) and every anomalous window.
func printBand(w io.Writer, m catalog.Metric, b catalog.Baseline, tenant string, windows []bandWindow) bandSummary {
	var s bandSummary
	var newest, newestOpen *bandWindow
	var anomalous []bandWindow
	for i, win := range windows {
		s.Windows++
		if win.hasBand() {
			s.WithBand++
			if win.Settled {
				newest = &windows[i]
			} else {
				newestOpen = &windows[i]
			}
		}
		if win.Anomaly {
			anomalous = append(anomalous, win)
			if win.Settled {
				s.Anomalies++
			} else {
				s.Provisional++
			}
		}
	}
	fmt.Fprintf(w, "\n== Customers: %s of %s against its baseline, tenant %s (%s windows; band: %s)\n",
		b.Output, m.Name, tenant, b.Window, describeBaseline(b))
	fmt.Fprintf(w, "  %d windows, %d with a band; %d anomalous, %d provisional (window not settled: end + allowed lateness %s not passed)\n",
		s.Windows, s.WithBand, s.Anomalies, s.Provisional, m.AllowedLateness)
	switch {
	case newest != nil:
		fmt.Fprintf(w, "  expected band of the newest settled window: %s  %s=%s  expected %s  band [%s, %s]  from %d past windows\n",
			span(*newest), b.Output, num(newest.Value), num(newest.Expected), num(newest.Lower), num(newest.Upper), newest.Samples)
	case newestOpen != nil:
		fmt.Fprintf(w, "  expected band of the newest window (provisional: window not settled): %s  %s=%s  expected %s  band [%s, %s]  from %d past windows\n",
			span(*newestOpen), b.Output, num(newestOpen.Value), num(newestOpen.Expected), num(newestOpen.Lower), num(newestOpen.Upper), newestOpen.Samples)
	default:
		fmt.Fprintf(w, "  expected band: none yet (no settled window with %d past windows)\n", b.MinSamples)
	}
	if len(anomalous) == 0 {
		fmt.Fprintln(w, "  anomalous windows: none")
		return s
	}
	fmt.Fprintln(w, "  anomalous windows (unusual traffic, not an SLA breach):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    WINDOW (UTC)\tVALUE\tEXPECTED\tBAND\tSCORE\tPAST\t")
	for _, a := range anomalous {
		state := ""
		if !a.Settled {
			state = "provisional: window not settled"
		}
		score := num(a.Score)
		if a.Score == nil {
			score = "null (flat history)"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t[%s, %s]\t%s\t%d\t%s\n", span(a), num(a.Value), num(a.Expected),
			num(a.Lower), num(a.Upper), score, a.Samples, state)
	}
	tw.Flush()
	return s
}

func span(w bandWindow) string {
	end := w.End.UTC().Format("15:04")
	if w.End.UTC().Format("2006-01-02") != w.Start.UTC().Format("2006-01-02") && w.End.UTC().Format("15:04") != "00:00" {
		end = w.End.UTC().Format("2006-01-02 15:04")
	}
	return w.Start.UTC().Format("2006-01-02 15:04") + "–" + end
}

func num(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(math.Round(*v*100)/100, 'f', -1, 64)
}

// reportBaseline is the baseline section of the report: it prints the
// expected band and the anomalous windows of baseline b of metric m for one
// tenant, from docs (the _source of the tenant's documents of the metric,
// any order; those of other window sizes are skipped), and writes the chart
// to svgPath. now decides which windows are settled. The summary lets the
// caller require a band and an anomaly; an error means no usable document or
// an unwritable file.
func reportBaseline(w io.Writer, svgPath string, m catalog.Metric, b catalog.Baseline, tenant string, docs []map[string]any, now time.Time) (bandSummary, error) {
	windows, err := bandWindows(m, b, tenant, docs, now)
	if err != nil {
		return bandSummary{}, err
	}
	return reportWindows(w, svgPath, m, b, tenant, windows)
}

// reportWindows prints and draws windows (bandWindows' result).
func reportWindows(w io.Writer, svgPath string, m catalog.Metric, b catalog.Baseline, tenant string, windows []bandWindow) (bandSummary, error) {
	s := printBand(w, m, b, tenant, windows)
	title := fmt.Sprintf("%s of %s, tenant %s: %s windows against the baseline", b.Output, m.Name, tenant, b.Window)
	svg := bandSVG(title, "band: "+describeBaseline(b)+"; an anomaly is not an SLA breach", b.Output, windows)
	if err := os.WriteFile(svgPath, svg, 0o644); err != nil {
		return s, fmt.Errorf("baseline %s.%s: write the chart: %w", m.Name, b.Output, err)
	}
	fmt.Fprintf(w, "  chart (value, expected band, anomalies): %s\n", svgPath)
	return s, nil
}

// baselines is the report's baseline section: for baseline (METRIC.OUTPUT)
// and each of the two tenants, the band, the anomalies and an SVG chart in
// chartDir, over the windows from the baseline's look-back before this run
// (since) to now. bandTenant's windows of this run must carry a band (the
// history was found), anomalyTenant must have an anomalous window in this run
// (settled or provisional).
func baselines(ctx context.Context, esURL, catalogPath, baseline, bandTenant, anomalyTenant, chartDir string, since time.Time, w io.Writer) error {
	metric, output, ok := strings.Cut(baseline, ".")
	if !ok || bandTenant == "" || anomalyTenant == "" || since.IsZero() {
		return fmt.Errorf("baseline: --baseline METRIC.OUTPUT, --band-tenant, --anomaly-tenant and --since are required together")
	}
	c, err := catalog.Load(catalogPath)
	if err != nil {
		return err
	}
	m, b, err := findBaseline(c, metric, output)
	if err != nil {
		return err
	}
	es, err := esclient.New(esclient.Config{URLs: []string{esURL}})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	from := since.Add(-time.Duration(b.Lookback.Samples()) * b.Lookback.Step(b.Window.Duration)).Truncate(b.Window.Duration)
	var problems []string
	for _, tenant := range []string{bandTenant, anomalyTenant} {
		docs, err := baselineDocuments(ctx, es, m, b, tenant, from, now.Add(b.Window.Duration))
		if err != nil {
			return err
		}
		svgPath := filepath.Join(chartDir, fmt.Sprintf("%s-%s-%s.svg", m.Name, b.Output, tenant))
		windows, err := bandWindows(m, b, tenant, docs, now)
		if err != nil {
			return err
		}
		if _, err := reportWindows(w, svgPath, m, b, tenant, windows); err != nil {
			return err
		}
		var banded, anomalous int
		for _, win := range windows {
			if win.End.After(since) {
				if win.hasBand() {
					banded++
				}
				if win.Anomaly {
					anomalous++
				}
			}
		}
		switch {
		case tenant == bandTenant && banded == 0:
			problems = append(problems, fmt.Sprintf("%s: no window of this run carries a band (no history found?)", tenant))
		case tenant == anomalyTenant && anomalous == 0:
			problems = append(problems, fmt.Sprintf("%s: no anomalous window in this run", tenant))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("baseline %s: %s", baseline, strings.Join(problems, "; "))
	}
	return nil
}

// maxBandDocs bounds one read of baseline documents (the default
// index.max_result_window).
const maxBandDocs = 10000

// baselineDocuments reads the _source of tenant's documents of the
// baseline's window size whose window starts in [from, to), oldest first:
// one search of at most maxBandDocs documents (a longer range is an error).
func baselineDocuments(ctx context.Context, es *esclient.Client, m catalog.Metric, b catalog.Baseline, tenant string, from, to time.Time) ([]map[string]any, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("baseline %s.%s: empty range %s to %s", m.Name, b.Output, from, to)
	}
	n := int64((to.Sub(from) + b.Window.Duration - 1) / b.Window.Duration)
	if n > maxBandDocs {
		return nil, fmt.Errorf("baseline %s.%s: %s to %s holds %d %s windows, over %d: shorten the range",
			m.Name, b.Output, from.Format(time.RFC3339), to.Format(time.RFC3339), n, b.Window, maxBandDocs)
	}
	start := catalog.DocWindow + "." + catalog.WindowStart
	body := fmt.Sprintf(`{"size":%d,"sort":[{%q:"asc"}],"query":{"bool":{"filter":[`+
		`{"term":{%q:%q}},{"term":{%q:%q}},{"range":{%q:{"gte":%q,"lt":%q}}}]}}}`,
		n, start, record.FieldTenant, tenant, catalog.DocWindow+"."+catalog.WindowSize, b.Window.String(),
		start, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	return searchSources(ctx, es, catalog.Alias(m.Name), body)
}

// findBaseline finds the baseline of output in the catalog's metric.
func findBaseline(c *catalog.Catalog, metric, output string) (catalog.Metric, catalog.Baseline, error) {
	m, ok := c.Metric(metric)
	if !ok {
		return catalog.Metric{}, catalog.Baseline{}, fmt.Errorf("baseline: no metric %q in the catalog", metric)
	}
	for _, b := range m.Baselines {
		if b.Output == output {
			return m, b, nil
		}
	}
	return catalog.Metric{}, catalog.Baseline{}, errors.New("baseline: metric " + metric + " declares no baseline of " + output)
}
