package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry (pixels).
const (
	chartLabelW = 430 // benchmark names, left of the bars
	chartBarW   = 360 // the bar area: ratio 0 at its left edge
	chartRowH   = 22
	chartTop    = 36
	// chartMaxRatio is where the scale ends.
	chartMaxRatio = 2.5
)

// chart draws the ratios as horizontal bars, one row per benchmark: the
// bar is median subject / median baseline, a dashed line marks 1.0 (as
// fast as the baseline), a tick marks the benchmark's goal where it has
// one. Bars at or above their goal are green, under it orange, without a
// goal grey. The scale ends at the largest of 1.25 and the ratios.
func chart(s summary) string {
	maxR := 1.25
	for _, r := range s.Results {
		if v := r.Ratio(); !math.IsNaN(v) && !math.IsInf(v, 0) {
			maxR = math.Max(maxR, v)
		}
	}
	// A budget met 25 times over would squeeze every other bar: the scale
	// stops at chartMaxRatio, longer bars are cut there (their label says
	// the ratio).
	maxR = math.Min(maxR, chartMaxRatio)
	x := func(v float64) float64 { return chartLabelW + chartBarW*math.Min(math.Max(0, v), maxR)/maxR }
	h := chartTop + chartRowH*len(s.Results) + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", chartLabelW+chartBarW+70, h)
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="14" font-weight="bold">Hourglass benchmarks, %s, %d cores: ratio = median subject / median baseline</text>`+"\n", html.EscapeString(s.Date), s.Cores)
	for i, r := range s.Results {
		y := chartTop + i*chartRowH
		v := r.Ratio()
		// Coloured only against a goal: without one the ratio's direction
		// is the unit's (a latency in ms is better lower), so grey.
		color := "#9d9d9d"
		if r.Goal > 0 && v >= r.Goal {
			color = "#59a14f"
		} else if r.Goal > 0 {
			color = "#f28e2b"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", chartLabelW-8, y+15, html.EscapeString(r.Name))
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %.2f</title></rect>`+"\n",
			chartLabelW, y+3, x(v)-chartLabelW, chartRowH-6, color, html.EscapeString(r.Name), v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.2f</text>`+"\n", x(v)+4, y+15, v)
		if r.Goal > 0 {
			fmt.Fprintf(&b, `<line class="goal" x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000" stroke-width="2"/>`+"\n", x(r.Goal), x(r.Goal), y+1, y+chartRowH-1)
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#555" stroke-dasharray="4 3"/>`+"\n", x(1), x(1), chartTop-4, h-20)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">1.0 = the baseline; black tick = goal</text>`+"\n", x(1), h-6)
	b.WriteString("</svg>\n")
	return b.String()
}
