package lagmon

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Handler serves GET /v1/status (the latest snapshot as JSON), GET
// /status (the SRE status page) and GET /openapi.json (their document).
// Mount it on the admin server at each of Paths.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", m.serveJSON)
	mux.HandleFunc("GET /status", m.servePage)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	return mux
}

func (m *Monitor) serveJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m.Snapshot()); err != nil {
		m.log.Warn("write /v1/status", "error", err)
	}
}

// chart is one inline SVG line chart.
type chart struct {
	Title string
	Unit  string
	SVG   template.HTML
}

// pageLateShareWarn: a late share above this is highlighted (the alert's
// threshold, HourglassMetricLateShareHigh in rules.yml).
const pageLateShareWarn = 0.01

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// svgChart draws series as polylines on a shared time axis, with an
// optional horizontal threshold line (the SLA). No scripts, no external files.
func svgChart(data map[string][]point, threshold float64, unit string) template.HTML {
	const w, h, left, bottom, top = 720.0, 220.0, 60.0, 24.0, 10.0
	names := keysOf(data)
	slices.Sort(names)
	var t0, t1 time.Time
	maxV := threshold
	for _, n := range names {
		for _, p := range data[n] {
			if t0.IsZero() || p.At.Before(t0) {
				t0 = p.At
			}
			if p.At.After(t1) {
				t1 = p.At
			}
			maxV = max(maxV, p.Value)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" role="img">`, w, h+20*math.Ceil(float64(len(names))/4))
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fafafa" stroke="#ccc"/>`, left, top, w-left-10, h-top-bottom)
	if len(names) == 0 || t1.Equal(t0) {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#888">no history yet</text></svg>`, left+10, h/2)
		return template.HTML(b.String())
	}
	if maxV <= 0 {
		maxV = 1
	}
	maxV *= 1.1
	x := func(t time.Time) float64 { return left + (w-left-10)*t.Sub(t0).Seconds()/t1.Sub(t0).Seconds() }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/maxV) }
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`, left-4, y(v)+3, template.HTMLEscapeString(human(v, unit)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="#555">%s</text>`, left, h-6, t0.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end" fill="#555">%s UTC</text>`, w-10, h-6, t1.UTC().Format("15:04:05"))
	if threshold > 0 {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#d00" stroke-dasharray="4 3"/>`, left, w-10, y(threshold), y(threshold))
	}
	for i, n := range names {
		col := palette[i%len(palette)]
		var pts []string
		for _, p := range data[n] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At), y(p.Value)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, col, strings.Join(pts, " "))
		lx, ly := left+float64(i%4)*165, h+12+20*float64(i/4)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f" font-size="11">%s</text>`,
			lx, ly-9, col, lx+14, ly, template.HTMLEscapeString(n))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func human(v float64, unit string) string {
	if unit != "s" {
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.1fM", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk", v/1e3)
		}
		return fmt.Sprintf("%.0f", v)
	}
	return (time.Duration(v) * time.Second).Round(time.Second).String()
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"secs": func(s Seconds) string {
		if !s.Known {
			return "unknown"
		}
		return s.D.Round(time.Second).String()
	},
	"count": func(c Count) string {
		if !c.Known {
			return "unknown"
		}
		return fmt.Sprint(c.N)
	},
	"class": func(s status.Status) string {
		switch {
		case s >= status.Stop:
			return "bad"
		case s >= status.Unknown:
			return "warn"
		}
		return "ok"
	},
	"forecast": func(f status.Forecast) string {
		var parts []string
		if f.Known {
			parts = append(parts, fmt.Sprintf("in %.1f/s, out %.1f/s", f.ProduceRate, f.ConsumeRate))
			if f.Drains {
				parts = append(parts, "drains in "+f.DrainETA.Round(time.Second).String())
			} else {
				parts = append(parts, "not draining")
			}
		}
		if f.Crosses {
			parts = append(parts, "SLA crossed in "+f.CrossIn.Round(time.Second).String())
		}
		return strings.Join(parts, "; ")
	},
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"share": func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", *v*100)
	},
	"shareClass": func(v *float64) string {
		if v != nil && *v > pageLateShareWarn {
			return "warn"
		}
		return ""
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{{.Refresh}}">
<title>Hourglass lag monitor</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f0f0f0}.ok{background:#e6f4ea}.warn{background:#fff4d6}.bad{background:#fde2e1;font-weight:bold}
h2{margin-top:1.2em}small{color:#666}
</style></head><body>
<h1>Hourglass lag monitor</h1>
<p><small>poll {{.Snap.Poll}} at {{time .Snap.At}} · JSON at <a href="v1/status">/v1/status</a> · <a href="metrics">/metrics</a></small></p>
{{range .Snap.Errors}}<p class="bad">{{.}}</p>{{end}}
<h2>Consumer groups</h2>
<table><tr><th>group</th><th>status</th><th>conditions</th><th>lag</th><th>time lag</th><th>SLA</th><th>members</th><th>forecast</th><th>advice</th></tr>
{{range .Snap.Groups}}<tr><td>{{.Group}}{{with .Error}}<br><small>{{.}}</small>{{end}}</td><td class="{{class .Status}}">{{.Status}}</td><td>{{range .Conditions}}{{.}} {{end}}</td>
<td>{{count .Lag}}{{with .LagUnknownReason}} ({{.}}){{end}}{{if .UnknownPartitions}} ({{.UnknownPartitions}} partitions unknown){{end}}</td><td>{{secs .TimeLag}}{{with .TimeLagUnknownReason}} ({{.}}){{end}}</td><td>{{secs .SLA}}</td><td>{{.Members}}</td>
<td>{{forecast .Forecast}}</td><td>{{if .Advice.Known}}{{.Advice.ConsumersNeeded}} consumers (x{{.Advice.ScaleFactor}}){{if .Advice.PartitionBound}}; needs more partitions{{end}}{{else}}unknown{{end}}</td></tr>
{{end}}</table>
{{range .Charts}}<h2>{{.Title}}</h2>{{.SVG}}{{end}}
<h2>Metric freshness</h2>
<table><tr><th>metric</th><th>status</th><th>tenant</th><th>newest hour ends</th><th>freshness</th><th>missing hour</th><th>reason</th><th>newest input event</th><th>input ahead of windows</th><th>window due</th></tr>
{{range .Snap.Freshness}}{{$m := .}}{{if .Tenants}}{{range .Tenants}}<tr><td>{{$m.Metric}}</td><td class="{{class .Status}}">{{.Status}}</td><td>{{.Tenant}}</td><td>{{with .Newest}}{{time .}}{{end}}</td><td>{{secs .Age}}</td><td>{{with .Missing}}{{time .}}{{end}}</td>
<td>{{.Reason}}</td><td>{{with .InputNewest}}{{time .}}{{end}}</td><td>{{secs .InputAhead}}{{with .InputAheadUnknownReason}} ({{.}}){{end}}</td><td>{{with .DueWindowEnd}}{{time .}}{{end}}</td></tr>
{{end}}{{else}}<tr><td>{{.Metric}}</td><td class="{{class .Status}}">{{.Status}}</td><td colspan="8">{{if .Error}}{{.Error}}{{else}}no data{{end}}</td></tr>{{end}}
{{end}}</table>
<h2>Records that reached a metric's job but no window</h2>
<p><small>Over the last {{.DroppedLookback}}, from hourglass-late-&lt;metric&gt;; the top tenants, the rest as _other. Records refused earlier: ingress <code>hourglass_ingress_records_rejected_total{reason}</code>, router DLQ <code>hourglass_router_dlq_records_total{reason}</code>; left out by a metric's filter on purpose: <code>hourglass_router_records_filtered_total{metric}</code>.</small></p>
<table><tr><th>metric</th><th>tenant</th><th>late</th><th>out of range</th><th>in windows</th><th>late share</th></tr>
{{range .Snap.Dropped}}{{$d := .}}<tr><td>{{.Metric}}</td><td><b>all</b></td>{{if .Error}}<td colspan="4" class="warn">{{.Error}}</td>{{else}}<td>{{.Late}}</td><td>{{.OutOfRange}}</td><td>{{.WindowRecords}}</td><td class="{{shareClass .LateShare}}">{{share .LateShare}}</td>{{end}}</tr>
{{range .Tenants}}<tr><td>{{$d.Metric}}</td><td>{{.Tenant}}</td><td>{{.Late}}</td><td>{{.OutOfRange}}</td><td>{{.WindowRecords}}</td><td class="{{shareClass .LateShare}}">{{share .LateShare}}</td></tr>
{{end}}{{else}}<tr><td colspan="6">no data</td></tr>{{end}}</table>
<h2>Batch job runs</h2>
<table><tr><th>metric</th><th>hour</th><th>start</th><th>duration</th><th>records</th><th>outcome</th><th>advice</th></tr>
{{range .Snap.JobRuns}}<tr class="{{if .Overrun}}warn{{end}}"><td>{{.Metric}}</td><td>{{.Hour}}</td><td>{{time .Start}}</td><td>{{secs .Duration}}</td><td>{{.Records}}</td><td>{{.Outcome}}</td><td>{{.Advice}}</td></tr>
{{else}}<tr><td colspan="7">no data</td></tr>{{end}}</table>
<h2>Partitions</h2>
<table><tr><th>group</th><th>topic</th><th>partition</th><th>status</th><th>committed</th><th>log start</th><th>end</th><th>lag</th><th>time lag</th><th>lost</th></tr>
{{range .Snap.Groups}}{{$g := .}}{{range .Partitions}}<tr><td>{{$g.Group}}</td><td>{{.Topic}}</td><td>{{.Partition}}</td><td class="{{class .Status}}">{{.Status}}</td>
<td>{{count .Committed}}{{with .CommittedUnknownReason}} ({{.}}){{end}}</td><td>{{count .LogStart}}</td><td>{{count .End}}</td><td>{{count .Lag}}{{with .LagUnknownReason}} ({{.}}){{end}}</td><td>{{secs .TimeLag}}</td><td>{{.Lost}}</td></tr>
{{end}}{{end}}</table>
</body></html>
`))

func (m *Monitor) servePage(w http.ResponseWriter, _ *http.Request) {
	snap := m.Snapshot()
	st := m.st.Load()
	var sla float64
	for _, g := range snap.Groups {
		sla = max(sla, g.SLA.D.Seconds())
	}
	var freshSLA float64
	for _, f := range snap.Freshness {
		freshSLA = max(freshSLA, (f.SLA.D + time.Hour).Seconds())
	}
	hours := st.cfg.History.Round(time.Minute).String()
	data := struct {
		Snap            *Snapshot
		Charts          []chart
		Refresh         int
		DroppedLookback time.Duration
	}{
		Snap:            snap,
		DroppedLookback: st.cfg.DroppedLookback,
		Refresh:         max(5, int(st.cfg.PollInterval.Seconds())),
		Charts: []chart{
			{Title: "Time lag per group, last " + hours + " (dashed: largest SLA)", SVG: svgChart(m.history.copyOf("time_lag"), sla, "s")},
			{Title: "Offset lag per group, last " + hours, SVG: svgChart(m.history.copyOf("lag"), 0, "records")},
			{Title: "Metric freshness (worst tenant), last " + hours + " (dashed: breach threshold)", SVG: svgChart(m.history.copyOf("freshness"), freshSLA, "s")},
		},
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, data); err != nil {
		m.log.Warn("render status page", "error", err)
	}
}
