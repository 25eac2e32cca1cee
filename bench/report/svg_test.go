package main

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
)

func TestChart(t *testing.T) {
	s := summary{Date: "2026-12-04", Cores: 2, Results: []benchreport.Result{
		{Name: "a <fast>", Subj: []float64{2}, Base: []float64{1}},                 // ratio 2
		{Name: "b", Subj: []float64{1, 1, 1}, Base: []float64{2, 2, 2}, Goal: 0.8}, // ratio 0.5, under its goal
		{Name: "c", Subj: []float64{9}, Base: []float64{10}, Goal: 0.8},            // 0.9, over it
		{Name: "d", Subj: []float64{25}, Base: []float64{1}, Goal: 1},              // 25: cut at the scale's end
	}}
	svg := chart(s)
	var doc struct {
		Rects []struct {
			Class string `xml:"class,attr"`
			Width string `xml:"width,attr"`
			Fill  string `xml:"fill,attr"`
		} `xml:"rect"`
		Lines []struct {
			Class string `xml:"class,attr"`
		} `xml:"line"`
	}
	require.NoError(t, xml.Unmarshal([]byte(svg), &doc), svg)
	require.Len(t, doc.Rects, 4, "one bar per benchmark")
	w := func(i int) float64 {
		v, err := strconv.ParseFloat(doc.Rects[i].Width, 64)
		require.NoError(t, err)
		return v
	}
	require.InDelta(t, 4, w(0)/w(1), 0.01, "bars proportional to the ratios")
	require.InDelta(t, chartBarW, w(3), 0.01, "a ratio past the scale's end fills the bar area, no more")
	require.Contains(t, svg, ">25.00<", "its label says the ratio")
	require.Equal(t, "#9d9d9d", doc.Rects[0].Fill, "no goal: neutral (the unit says which way is better)")
	require.Equal(t, "#f28e2b", doc.Rects[1].Fill, "under its goal")
	require.Equal(t, "#59a14f", doc.Rects[2].Fill, "over its goal")
	goals := 0
	for _, l := range doc.Lines {
		if l.Class == "goal" {
			goals++
		}
	}
	require.Equal(t, 3, goals)
	require.True(t, strings.Contains(svg, "a &lt;fast&gt;"), "names escaped")
}
