package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
)

// The fixture: request_rate's documents of tenant-01 on 2026-01-08, 1h
// windows 00:00 to 12:00 without 10:00 (no document), in reverse order,
// plus one 1-minute window. 00:00 and 01:00 have 3 past windows (under
// min_samples 5: no band); 07:00 (value 400) is anomalous; 11:00 (value 500)
// is anomalous but still open at fixtureNow.
const fixture = "testdata/request_rate-tenant-01.json"

var fixtureNow = time.Date(2026, 1, 8, 11, 30, 0, 0, time.UTC)

func fixtureDocs(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(fixture)
	require.NoError(t, err)
	var docs []map[string]any
	require.NoError(t, json.Unmarshal(data, &docs))
	return docs
}

func requestRate(t *testing.T) (catalog.Metric, catalog.Baseline) {
	t.Helper()
	c, err := catalog.Load("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	m, b, err := findBaseline(c, "request_rate", "requests")
	require.NoError(t, err)
	return m, b
}

func TestBaselineLeavesAreMapped(t *testing.T) {
	props := essetup.BaselineMapping()["properties"].(map[string]any)
	for _, leaf := range []string{catalog.BaselineExpected, catalog.BaselineLower, catalog.BaselineUpper, catalog.BaselineScore, catalog.BaselineAnomaly, catalog.BaselineSamples} {
		require.Contains(t, props, leaf)
	}
	m, _ := requestRate(t)
	window := essetup.MetricMapping(m)["properties"].(map[string]any)[catalog.DocWindow].(map[string]any)["properties"].(map[string]any)
	for _, k := range []string{catalog.WindowStart, catalog.WindowEnd, catalog.WindowSize} {
		require.Contains(t, window, k)
	}
}

func TestBandWindows(t *testing.T) {
	m, b := requestRate(t)
	windows, err := bandWindows(m, b, "tenant-01", fixtureDocs(t), fixtureNow)
	require.NoError(t, err)
	require.Len(t, windows, 11, "the 1m window skipped")
	for i := 1; i < len(windows); i++ {
		require.True(t, windows[i-1].Start.Before(windows[i].Start), "oldest first")
	}
	first, seventh, last := windows[0], windows[7], windows[10]
	require.False(t, first.hasBand(), "3 past windows, min_samples 5: no band")
	require.Equal(t, 1000.0, *first.Expected)
	require.Nil(t, first.Score)
	require.True(t, seventh.Anomaly && seventh.Settled)
	require.Equal(t, 400.0, *seventh.Value)
	require.InDelta(t, 1000-3*1.4826*20, *seventh.Lower, 1e-9)
	require.Equal(t, 7, seventh.Samples)
	require.True(t, last.Anomaly)
	require.False(t, last.Settled, "11:00-12:00 is open at 11:30")
	require.True(t, windows[9].Settled, "10:00 missing; 09:00-10:00 ended 1h30 ago")
}

func TestReportBaseline(t *testing.T) {
	m, b := requestRate(t)
	svgPath := filepath.Join(t.TempDir(), "request_rate-requests-tenant-01.svg")
	var out bytes.Buffer
	s, err := reportBaseline(&out, svgPath, m, b, "tenant-01", fixtureDocs(t), fixtureNow)
	require.NoError(t, err)
	require.Equal(t, bandSummary{Windows: 11, WithBand: 9, Anomalies: 1, Provisional: 1}, s)
	text := out.String()
	t.Log("\n" + text)
	require.Contains(t, text, "requests of request_rate against its baseline, tenant tenant-01 (1h windows; band: median ± 3 × 1.4826·MAD of the same window of the 7 previous days, at least 5 found)")
	require.Contains(t, text, "expected band of the newest settled window: 2026-01-08 09:00–10:00  requests=985  expected 1000  band [911.04, 1088.96]  from 7 past windows")
	require.Regexp(t, `2026-01-08 07:00–08:00\s+400\s+1000\s+\[911.04, 1088.96\]\s+-20.23\s+7`, text)
	require.Regexp(t, `2026-01-08 11:00–12:00\s+500 .*provisional: window not settled`, text)
	require.Contains(t, text, "not an SLA breach")
	require.Contains(t, text, svgPath)

	data, err := os.ReadFile(svgPath)
	require.NoError(t, err)
	svg := parseSVG(t, data)
	require.Equal(t, "svg", svg.root)
	require.Len(t, svg.texts["title"], 1)
	require.Contains(t, svg.texts["title"][0], "requests of request_rate, tenant tenant-01")
	require.Len(t, svg.texts["axis-label x"], 1)
	require.Equal(t, []string{"requests"}, svg.texts["axis-label y"])

	// The band: 02:00 to 09:00 (adjacent, with a band), then 11:00 alone (10:00
	// is missing): two step polygons, closed.
	require.Len(t, svg.elems["band"], 2)
	for _, p := range svg.elems["band"] {
		require.Equal(t, "path", p.name)
		require.True(t, strings.HasSuffix(p.attrs["d"], "Z"))
	}
	require.Equal(t, 4*8, strings.Count(svg.elems["band"][0].attrs["d"], " L")+1, "8 windows: 4 vertices each")
	// The value: a point per window with a value; the line broken at 10:00.
	require.Len(t, svg.elems["point"], 11)
	require.Len(t, svg.elems["value"], 2)
	points := 0
	for _, l := range svg.elems["value"] {
		points += len(strings.Fields(l.attrs["points"]))
	}
	require.Equal(t, 11, points)
	// The anomalies: one settled (filled), one provisional (hollow), each
	// window shaded.
	require.Len(t, svg.elems["anomaly"], 1)
	require.Equal(t, colorAnomaly, svg.elems["anomaly"][0].attrs["fill"])
	require.Len(t, svg.elems["anomaly provisional"], 1)
	require.Equal(t, "#ffffff", svg.elems["anomaly provisional"][0].attrs["fill"])
	require.Len(t, svg.elems["anomaly-window"], 2)
	require.Len(t, svg.elems["expected"], 1)
	// The settled anomaly sits below the band: 400 is under the lower bound.
	require.Greater(t, attrFloat(t, svg.elems["anomaly"][0], "cy"), maxY(t, svg.elems["band"][0].attrs["d"]))
	// Everything inside the canvas.
	for _, c := range svg.elems["point"] {
		require.InDelta(t, svgWidth/2, attrFloat(t, c, "cx"), svgWidth/2)
		require.InDelta(t, svgHeight/2, attrFloat(t, c, "cy"), svgHeight/2)
	}
}

func TestReportBaselineWithoutAnomalyOrBand(t *testing.T) {
	m, b := requestRate(t)
	docs := fixtureDocs(t)[:1] // 11:00, open: its anomaly is provisional
	var out bytes.Buffer
	s, err := reportBaseline(&out, filepath.Join(t.TempDir(), "c.svg"), m, b, "tenant-01", docs, fixtureNow)
	require.NoError(t, err)
	require.Equal(t, bandSummary{Windows: 1, WithBand: 1, Provisional: 1}, s)
	require.Contains(t, out.String(), "expected band of the newest window (provisional: window not settled): 2026-01-08 11:00–12:00  requests=500")

	// A document without the baseline object (written before the baseline
	// was declared): its value is drawn, no band.
	delete(docs[0], catalog.BaselineField)
	out.Reset()
	path := filepath.Join(t.TempDir(), "d.svg")
	s, err = reportBaseline(&out, path, m, b, "tenant-01", docs, fixtureNow)
	require.NoError(t, err)
	require.Equal(t, bandSummary{Windows: 1}, s)
	require.Contains(t, out.String(), "expected band: none yet (no settled window with 5 past windows)")
	require.Contains(t, out.String(), "anomalous windows: none")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	svg := parseSVG(t, data)
	require.Empty(t, svg.elems["band"])
	require.Len(t, svg.elems["point"], 1)
}

func TestBandWindowsRefuses(t *testing.T) {
	m, b := requestRate(t)
	for _, tc := range []struct {
		name   string
		mutate func(docs []map[string]any) []map[string]any
		want   string
	}{
		{"another tenant's document", func(d []map[string]any) []map[string]any {
			d[2]["tenant"] = "tenant-02"
			return d
		}, "is of tenant tenant-02, not tenant-01"},
		{"two documents of one window", func(d []map[string]any) []map[string]any { return append(d, d[0]) },
			"two documents of the window starting 2026-01-08T11:00:00Z"},
		{"no document of the baseline's size", func(d []map[string]any) []map[string]any { return d[8:9] },
			"no document of a 1h window for tenant-01"},
		{"a malformed window start", func(d []map[string]any) []map[string]any {
			d[0]["window"].(map[string]any)["start"] = "yesterday"
			return d
		}, "window.start"},
		{"a string where a number belongs", func(d []map[string]any) []map[string]any {
			d[0]["baseline"].(map[string]any)["requests"].(map[string]any)["lower"] = "911"
			return d
		}, "baseline.requests.lower: want a number or null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bandWindows(m, b, "tenant-01", tc.mutate(fixtureDocs(t)), fixtureNow)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A metric grouped by tenant and host: one group's documents only.
	byHost := m
	byHost.GroupBy = []string{"tenant", "host"}
	docs := fixtureDocs(t)
	for i, d := range docs {
		d["host"] = []string{"a.example", "b.example"}[i%2]
	}
	_, err := bandWindows(byHost, b, "tenant-01", docs, fixtureNow)
	require.ErrorContains(t, err, "documents of several groups")

	var errs []error
	_, _, err = findBaseline(&catalog.Catalog{Metrics: []catalog.Metric{m}}, "request_rate", "requests_per_second")
	errs = append(errs, err)
	_, _, err = findBaseline(&catalog.Catalog{Metrics: []catalog.Metric{m}}, "nope", "requests")
	errs = append(errs, err)
	require.ErrorContains(t, errors.Join(errs...), "declares no baseline of requests_per_second")
	require.ErrorContains(t, errors.Join(errs...), `no metric "nope"`)
}

// baselineDocuments asks for one tenant's windows of the baseline's size in
// the range, oldest first, bounded; its answer feeds reportBaseline.
func TestBaselineDocuments(t *testing.T) {
	m, b := requestRate(t)
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/hourglass-metrics-request_rate/_search", r.URL.Path)
		raw, _ := io.ReadAll(r.Body)
		require.NoError(t, json.Unmarshal(raw, &body))
		var hits []any
		for _, d := range fixtureDocs(t) {
			hits = append(hits, map[string]any{"_source": d})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"hits": map[string]any{"hits": hits}})
	}))
	defer srv.Close()
	es, err := esclient.New(esclient.Config{URLs: []string{srv.URL}, MaxRetries: -1})
	require.NoError(t, err)
	from := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)
	docs, err := baselineDocuments(context.Background(), es, m, b, "tenant-01", from, fixtureNow)
	require.NoError(t, err)
	require.Len(t, docs, 12)
	q, _ := json.Marshal(body)
	require.Equal(t, float64(12), body["size"], "11.5 hours: 12 windows at most")
	require.Contains(t, string(q), `{"term":{"tenant":"tenant-01"}}`)
	require.Contains(t, string(q), `{"term":{"window.size":"1h"}}`)
	require.Contains(t, string(q), `{"range":{"window.start":{"gte":"2026-01-08T00:00:00Z","lt":"2026-01-08T11:30:00Z"}}}`)
	require.Contains(t, string(q), `"sort":[{"window.start":"asc"}]`)

	_, err = baselineDocuments(context.Background(), es, m, b, "tenant-01", from, from.Add(10001*time.Hour))
	require.ErrorContains(t, err, "over 10000: shorten the range")
	_, err = baselineDocuments(context.Background(), es, m, b, "tenant-01", from, from)
	require.ErrorContains(t, err, "empty range")
}

func TestNiceTicks(t *testing.T) {
	ticks, step := niceTicks(380, 1088.96, 6)
	require.Equal(t, 200.0, step)
	require.Equal(t, []float64{200, 400, 600, 800, 1000, 1200}, ticks)
	ticks, _ = niceTicks(5, 5, 6)
	require.Less(t, ticks[0], 5.0)
	require.Greater(t, ticks[len(ticks)-1], 5.0)
	ticks, step = niceTicks(0.012, 0.034, 5)
	require.Equal(t, 0.005, step)
	require.Equal(t, "0.010", tickLabel(ticks[0], step))
}

// svgDoc is what the tests read back from a chart: the root element, and per
// class the elements and the texts.
type svgDoc struct {
	root  string
	elems map[string][]svgElem
	texts map[string][]string
}

type svgElem struct {
	name  string
	attrs map[string]string
}

// parseSVG reads the chart as XML (it must be well-formed).
func parseSVG(t *testing.T, data []byte) svgDoc {
	t.Helper()
	doc := svgDoc{elems: map[string][]svgElem{}, texts: map[string][]string{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []svgElem
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch x := tok.(type) {
		case xml.StartElement:
			e := svgElem{name: x.Name.Local, attrs: map[string]string{}}
			for _, a := range x.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			if doc.root == "" {
				doc.root = e.name
				require.Equal(t, "http://www.w3.org/2000/svg", x.Name.Space)
			}
			if c := e.attrs["class"]; c != "" {
				doc.elems[c] = append(doc.elems[c], e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if c := stack[len(stack)-1].attrs["class"]; c != "" && strings.TrimSpace(string(x)) != "" {
					doc.texts[c] = append(doc.texts[c], string(x))
				}
			}
		}
	}
	require.Empty(t, stack)
	return doc
}

func attrFloat(t *testing.T, e svgElem, name string) float64 {
	t.Helper()
	var f float64
	require.NoError(t, json.Unmarshal([]byte(e.attrs[name]), &f), "%s=%q", name, e.attrs[name])
	return f
}

var pathY = regexp.MustCompile(`[ML][0-9.]+ ([0-9.]+)`)

// maxY is the lowest point (largest y) of a path.
func maxY(t *testing.T, d string) float64 {
	t.Helper()
	best := 0.0
	for _, m := range pathY.FindAllStringSubmatch(d, -1) {
		var f float64
		require.NoError(t, json.Unmarshal([]byte(m[1]), &f))
		best = max(best, f)
	}
	return best
}

// A same-window-of-day history (one hour on each earlier day) is drawn with
// its gaps collapsed: every window gets a readable width, each gap a mark, and
// the axis labels the hours shown.
func TestBandSVGCollapsesGaps(t *testing.T) {
	today := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	var windows []bandWindow
	for d := 7; d >= 0; d-- {
		v := 200.0 + float64(d)
		w := bandWindow{Start: today.AddDate(0, 0, -d), End: today.AddDate(0, 0, -d).Add(time.Hour), Value: &v, Settled: d > 0}
		if d == 0 {
			v = 600
			exp, lo, hi, score := 200.0, 170.0, 230.0, 40.0
			w.HasBaseline, w.Expected, w.Lower, w.Upper, w.Score, w.Anomaly, w.Samples = true, &exp, &lo, &hi, &score, true, 7
		}
		windows = append(windows, w)
	}
	svg := parseSVG(t, bandSVG("t", "s", "duration_ms_p95", windows))
	require.Len(t, svg.elems["gap"], 7)
	require.Len(t, svg.elems["band"], 1)
	xs := regexp.MustCompile(`[ML]([0-9.]+) `).FindAllStringSubmatch(svg.elems["band"][0].attrs["d"], -1)
	left, right := math.Inf(1), math.Inf(-1)
	for _, m := range xs {
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		left, right = math.Min(left, v), math.Max(right, v)
	}
	require.InDelta(t, plotW/15, right-left, 1, "8 windows and 7 collapsed gaps share the width")
	require.Len(t, svg.elems["point"], 8)
	require.Len(t, svg.elems["anomaly provisional"], 1)
	require.Equal(t, []string{"11-27 14:00", "11-28 14:00", "11-29 14:00", "11-30 14:00", "12-01 14:00", "12-02 14:00",
		"12-03 14:00", "12-04 14:00"}, svg.texts["tick x"])
}
