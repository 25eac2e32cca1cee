package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"
)

// The chart of a baselined output (bandSVG): a standalone SVG 1.1 document,
// no script, no external file. Elements carry classes the tests (and a
// reader) find them by: band (a step polygon per run of adjacent windows with
// a band), expected (dashed), value (a polyline per run of adjacent windows
// with a value) and point (one per value), anomaly-window (the span of an
// anomalous window) and anomaly (its marker; "anomaly provisional", hollow,
// while the window is not settled), axis, axis-label, title, legend.

const (
	svgWidth, svgHeight                    = 900.0, 400.0
	padLeft, padRight, padTop, padBottom   = 78.0, 24.0, 78.0, 52.0
	plotW                                  = svgWidth - padLeft - padRight
	plotH                                  = svgHeight - padTop - padBottom
	colorValue, colorBand, colorExpected   = "#1f5f99", "#c5cbd6", "#5a6270"
	colorAnomaly, colorGrid, colorAxisText = "#e7664c", "#e6e8ec", "#343741"
)

// bandSVG draws windows (oldest first, as bandWindows returns them).
func bandSVG(title, subtitle, yLabel string, windows []bandWindow) []byte {
	var b bytes.Buffer
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, w := range windows {
		for _, v := range []*float64{w.Value, w.Lower, w.Upper, w.Expected} {
			if v != nil {
				lo, hi = math.Min(lo, *v), math.Max(hi, *v)
			}
		}
	}
	if math.IsInf(lo, 0) { // no number at all
		lo, hi = 0, 1
	}
	pad := (hi - lo) * 0.05 // no marker on the frame
	lo, hi = lo-pad, hi+pad
	yTicks, yStep := niceTicks(lo, hi, 6)
	ylo, yhi := yTicks[0], yTicks[len(yTicks)-1]
	axis := newTimeAxis(windows)
	x := func(t time.Time) float64 { return padLeft + plotW*axis.at(t) }
	y := func(v float64) float64 { return padTop + plotH*(1-(v-ylo)/(yhi-ylo)) }
	mid := func(w bandWindow) time.Time { return w.Start.Add(w.End.Sub(w.Start) / 2) }

	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12" role="img">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="#ffffff"/>`+"\n", svgWidth, svgHeight)
	fmt.Fprintf(&b, `<text class="title" x="%g" y="22" font-size="15" font-weight="bold" fill="%s">%s</text>`+"\n", padLeft, colorAxisText, esc(title))
	fmt.Fprintf(&b, `<text class="subtitle" x="%g" y="40" fill="%s">%s</text>`+"\n", padLeft, colorAxisText, esc(subtitle))

	// Axes and grid.
	b.WriteString(`<g class="axis y">` + "\n")
	for _, v := range yTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padLeft, y(v), padLeft+plotW, y(v), colorGrid)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", padLeft-6, y(v)+4, colorAxisText, tickLabel(v, yStep))
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g class="axis x">` + "\n")
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padLeft, padTop+plotH, padLeft+plotW, padTop+plotH, colorAxisText)
	for _, t := range axis.ticks() {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x(t.at), padTop+plotH, x(t.at), padTop+plotH+5, colorAxisText)
		fmt.Fprintf(&b, `<text class="tick x" x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`+"\n", x(t.at), padTop+plotH+18, colorAxisText, esc(t.label))
	}
	b.WriteString("</g>\n")
	// Each collapsed gap: a dotted line and a break mark on the axis.
	for _, g := range axis.gaps() {
		gx := padLeft + plotW*g
		fmt.Fprintf(&b, `<g class="gap"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`+
			`<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">//</text></g>`+"\n",
			gx, padTop, gx, padTop+plotH, colorGrid, gx, padTop+plotH+4, colorAxisText)
	}
	fmt.Fprintf(&b, `<text class="axis-label x" x="%.1f" y="%.1f" text-anchor="middle" fill="%s">window (UTC)</text>`+"\n",
		padLeft+plotW/2, svgHeight-10, colorAxisText)
	fmt.Fprintf(&b, `<text class="axis-label y" x="%.1f" y="%.1f" text-anchor="middle" fill="%s" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		18.0, padTop+plotH/2, colorAxisText, 18.0, padTop+plotH/2, esc(yLabel))

	// Anomalous windows, shaded over their span.
	for _, w := range windows {
		if w.Anomaly {
			opacity := 0.22
			if !w.Settled {
				opacity = 0.08
			}
			fmt.Fprintf(&b, `<rect class="anomaly-window" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%g"/>`+"\n",
				x(w.Start), padTop, x(w.End)-x(w.Start), plotH, colorAnomaly, opacity)
		}
	}
	// The band: a step polygon per run of adjacent windows that have one.
	for _, run := range runs(windows, bandWindow.hasBand) {
		var d strings.Builder
		for i, w := range run {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f L%.1f %.1f ", cmd, x(w.Start), y(*w.Upper), x(w.End), y(*w.Upper))
		}
		for i := len(run) - 1; i >= 0; i-- {
			w := run[i]
			fmt.Fprintf(&d, "L%.1f %.1f L%.1f %.1f ", x(w.End), y(*w.Lower), x(w.Start), y(*w.Lower))
		}
		d.WriteString("Z")
		fmt.Fprintf(&b, `<path class="band" d="%s" fill="%s" fill-opacity="0.6" stroke="none"/>`+"\n", d.String(), colorBand)
	}
	// The expected value: a dashed step per window.
	var d strings.Builder
	for _, w := range windows {
		if w.Expected != nil {
			fmt.Fprintf(&d, "M%.1f %.1f L%.1f %.1f ", x(w.Start), y(*w.Expected), x(w.End), y(*w.Expected))
		}
	}
	if d.Len() > 0 {
		fmt.Fprintf(&b, `<path class="expected" d="%s" fill="none" stroke="%s" stroke-width="1.2" stroke-dasharray="5 3"/>`+"\n",
			strings.TrimSpace(d.String()), colorExpected)
	}
	// The value: a line through each window's middle, broken where a window
	// is missing or has no value.
	for _, run := range runs(windows, func(w bandWindow) bool { return w.Value != nil }) {
		pts := make([]string, len(run))
		for i, w := range run {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(mid(w)), y(*w.Value))
		}
		fmt.Fprintf(&b, `<polyline class="value" points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colorValue)
	}
	for _, w := range windows {
		if w.Value != nil {
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s</title></circle>`+"\n",
				x(mid(w)), y(*w.Value), colorValue, esc(pointText(w)))
		}
	}
	// The anomalies: filled when settled, hollow while provisional.
	for _, w := range windows {
		if !w.Anomaly || w.Value == nil {
			continue
		}
		class, fill := "anomaly", colorAnomaly
		if !w.Settled {
			class, fill = "anomaly provisional", "#ffffff"
		}
		fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="6" fill="%s" stroke="%s" stroke-width="2"><title>%s</title></circle>`+"\n",
			class, x(mid(w)), y(*w.Value), fill, colorAnomaly, esc(pointText(w)))
	}
	// Legend: a swatch and a label per item, spaced by the label's length.
	lx, ly := padLeft, 60.0
	b.WriteString(`<g class="legend">` + "\n")
	for _, item := range []struct{ swatch, label string }{
		{fmt.Sprintf(`<line x1="0" y1="0" x2="20" y2="0" stroke="%s" stroke-width="2"/>`, colorValue), "value"},
		{fmt.Sprintf(`<rect x="0" y="-5" width="20" height="10" fill="%s" fill-opacity="0.6"/>`, colorBand), "expected band (lower to upper)"},
		{fmt.Sprintf(`<line x1="0" y1="0" x2="20" y2="0" stroke="%s" stroke-dasharray="5 3"/>`, colorExpected), "expected"},
		{fmt.Sprintf(`<circle cx="10" cy="0" r="5" fill="%s"/>`, colorAnomaly), "anomaly"},
		{fmt.Sprintf(`<circle cx="10" cy="0" r="5" fill="#ffffff" stroke="%s" stroke-width="2"/>`, colorAnomaly), "provisional (window not settled)"},
	} {
		fmt.Fprintf(&b, `<g transform="translate(%.1f %.1f)">%s<text x="26" y="4" fill="%s">%s</text></g>`+"\n",
			lx, ly, item.swatch, colorAxisText, esc(item.label))
		lx += 26 + 7*float64(len([]rune(item.label))) + 18
	}
	b.WriteString("</g>\n</svg>\n")
	return b.Bytes()
}

// timeAxis maps time to [0, 1] across the plot. Contiguous windows keep a
// time scale; a gap longer than one window (a same-window-of-day history
// holds one hour of each earlier day) is collapsed to one window's width and
// marked, or a one-hour window among days would be a hairline.
type timeAxis struct {
	runs  [][2]time.Time // contiguous spans, oldest first
	unit  time.Duration  // one window
	total time.Duration  // the drawn span: the runs plus one unit per collapsed gap
}

func newTimeAxis(windows []bandWindow) timeAxis {
	a := timeAxis{unit: windows[0].End.Sub(windows[0].Start)}
	for _, w := range windows {
		if n := len(a.runs); n > 0 && !w.Start.After(a.runs[n-1][1].Add(a.unit)) {
			a.runs[n-1][1] = maxTime(a.runs[n-1][1], w.End) // adjacent, or a gap of at most one window: kept to scale
			continue
		}
		a.runs = append(a.runs, [2]time.Time{w.Start, w.End})
	}
	for _, r := range a.runs {
		a.total += r[1].Sub(r[0])
	}
	a.total += time.Duration(len(a.runs)-1) * a.unit
	return a
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// at is t's position; a time inside a collapsed gap sits at the gap's middle.
func (a timeAxis) at(t time.Time) float64 {
	var off time.Duration
	for i, r := range a.runs {
		if !t.After(r[1]) {
			if t.Before(r[0]) { // in the gap before run i
				return max(0, (off-a.unit/2).Seconds()/a.total.Seconds())
			}
			return (off + t.Sub(r[0])).Seconds() / a.total.Seconds()
		}
		off += r[1].Sub(r[0])
		if i < len(a.runs)-1 {
			off += a.unit
		}
	}
	return 1
}

// gaps are the collapsed gaps' positions.
func (a timeAxis) gaps() []float64 {
	var out []float64
	for i := 1; i < len(a.runs); i++ {
		out = append(out, a.at(a.runs[i][0])-a.unit.Seconds()/2/a.total.Seconds())
	}
	return out
}

// ticks labels the axis: round UTC times when nothing is collapsed, else the
// start of each run (at most 8, evenly picked).
func (a timeAxis) ticks() []timeTick {
	if len(a.runs) == 1 {
		return timeTicks(a.runs[0][0], a.runs[0][1])
	}
	step := (len(a.runs) + 7) / 8
	var out []timeTick
	for i := 0; i < len(a.runs); i += step {
		out = append(out, timeTick{a.runs[i][0], a.runs[i][0].UTC().Format("01-02 15:04")})
	}
	return out
}

// runs splits windows into runs of adjacent windows (each starting where the
// previous ended) for which keep holds.
func runs(windows []bandWindow, keep func(bandWindow) bool) [][]bandWindow {
	var out [][]bandWindow
	var cur []bandWindow
	for _, w := range windows {
		if !keep(w) || (len(cur) > 0 && !cur[len(cur)-1].End.Equal(w.Start)) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
		}
		if keep(w) {
			cur = append(cur, w)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func pointText(w bandWindow) string {
	s := fmt.Sprintf("%s value %s, expected %s, band [%s, %s], score %s, %d past windows",
		span(w), num(w.Value), num(w.Expected), num(w.Lower), num(w.Upper), num(w.Score), w.Samples)
	switch {
	case w.Anomaly && w.Settled:
		s += ": anomaly (not an SLA breach)"
	case w.Anomaly:
		s += ": provisional anomaly (window not settled)"
	}
	return s
}

// niceTicks covers [lo, hi] with about n ticks at a step of 1, 2 or 5 × 10^k.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if hi <= lo {
		pad := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, f := range []float64{1, 2, 5, 10} {
		if f*mag >= raw {
			step = f * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v < hi+step/2; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out, step
}

func tickLabel(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

type timeTick struct {
	at    time.Time
	label string
}

// timeTicks labels [from, to] at most 8 times, at a round UTC step.
func timeTicks(from, to time.Time) []timeTick {
	steps := []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour}
	span := to.Sub(from)
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step >= 24*time.Hour:
		layout = "2006-01-02"
	case span > 24*time.Hour || from.UTC().YearDay() != to.UTC().Add(-time.Nanosecond).YearDay():
		layout = "01-02 15:04"
	}
	var out []timeTick
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if !t.Before(from) {
			out = append(out, timeTick{t, t.Format(layout)})
		}
	}
	return out
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
