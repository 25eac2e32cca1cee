package lagmon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
)

// Records that reach a metric's job but no window. The job (metrics-jobs,
// stream.py) writes them to hourglass-late-<metric>, one document per
// micro-batch, window and group: reason "late" with late_records (records
// behind the watermark, counted once per window size: the smallest size is
// read, since a record late for a larger window is late for the smaller
// one), reason "out_of_range" with rejected_records (event time too far
// after the Kafka timestamp, dropped before the watermark). The monitor sums
// them per tenant over DroppedLookback (by computed_at) beside the records
// the smallest windows that started in the same lookback hold (samples).
// Records refused before the job are counted by ingress
// (hourglass_ingress_records_rejected_total{reason}) and the router
// (hourglass_router_dlq_records_total{reason}); records a metric's filter
// leaves out on purpose by the router (hourglass_router_records_filtered_total{metric}).

// OtherTenants is the tenant label of the tenants past the top
// DroppedTenants (a tenant name cannot hold "_").
const OtherTenants = "_other"

// Drop reasons, as the job writes them (internal/catalog owns the late
// documents); also the reason label of hourglass_metric_dropped_records.
const (
	DropLate       = catalog.ReasonLate
	DropOutOfRange = catalog.ReasonOutOfRange
)

// droppedTermsMax bounds the tenant buckets one aggregation returns.
const droppedTermsMax = 10000

// MetricDropped counts one metric's records that reached its job but no
// window, over the lookback.
type MetricDropped struct {
	Metric string `json:"metric"`
	Index  string `json:"index"`
	// Late, OutOfRange: records counted late (behind the watermark) or out
	// of range by the job; WindowRecords: records in the smallest windows
	// that started in the lookback. LateShare = Late / (Late + WindowRecords),
	// null when both are 0.
	Late          int64    `json:"late_records"`
	OutOfRange    int64    `json:"out_of_range_records"`
	WindowRecords int64    `json:"window_records"`
	LateShare     *float64 `json:"late_share"`
	// Tenants: the DroppedTenants tenants with the most dropped records, then
	// the rest summed as "_other" (present only when not empty).
	Tenants []TenantDropped `json:"tenants"`
	Error   string          `json:"error,omitempty"`
}

// TenantDropped is one tenant's (or "_other"'s) share of MetricDropped.
type TenantDropped struct {
	Tenant        string   `json:"tenant"`
	Late          int64    `json:"late_records"`
	OutOfRange    int64    `json:"out_of_range_records"`
	WindowRecords int64    `json:"window_records"`
	LateShare     *float64 `json:"late_share"`
}

// lateShare is late/(late+in), nil when both are 0.
func lateShare(late, in int64) *float64 {
	if late+in <= 0 {
		return nil
	}
	v := float64(late) / float64(late+in)
	return &v
}

// dropCounts is what the late index and the metric's windows say, per tenant.
type dropCounts struct {
	late, outOfRange, windows map[string]int64
	lateTotal, oorTotal       int64
	windowTotal               int64
}

// boundTenants keeps the top n tenants by dropped records (late +
// out_of_range; ties by name), and sums every other tenant into "_other".
// Tenants with nothing dropped get no entry of their own. Pure.
func boundTenants(c dropCounts, n int) MetricDropped {
	d := MetricDropped{Late: c.lateTotal, OutOfRange: c.oorTotal, WindowRecords: c.windowTotal, Tenants: []TenantDropped{}}
	d.LateShare = lateShare(d.Late, d.WindowRecords)
	names := map[string]bool{}
	for t, v := range c.late {
		if v > 0 {
			names[t] = true
		}
	}
	for t, v := range c.outOfRange {
		if v > 0 {
			names[t] = true
		}
	}
	all := make([]TenantDropped, 0, len(names))
	for t := range names {
		all = append(all, TenantDropped{Tenant: t, Late: c.late[t], OutOfRange: c.outOfRange[t], WindowRecords: c.windows[t]})
	}
	slices.SortFunc(all, func(a, b TenantDropped) int {
		if x, y := a.Late+a.OutOfRange, b.Late+b.OutOfRange; x != y {
			if x > y {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Tenant, b.Tenant)
	})
	if len(all) > n {
		all = all[:n]
	}
	other := TenantDropped{Tenant: OtherTenants, Late: c.lateTotal, OutOfRange: c.oorTotal, WindowRecords: c.windowTotal}
	for i := range all {
		all[i].LateShare = lateShare(all[i].Late, all[i].WindowRecords)
		other.Late -= all[i].Late
		other.OutOfRange -= all[i].OutOfRange
		other.WindowRecords -= all[i].WindowRecords
	}
	d.Tenants = all
	if other.Late > 0 || other.OutOfRange > 0 {
		other.WindowRecords = max(0, other.WindowRecords)
		other.LateShare = lateShare(other.Late, other.WindowRecords)
		d.Tenants = append(d.Tenants, other)
	}
	return d
}

type sumBuckets struct {
	Total struct {
		Value *float64 `json:"value"`
	} `json:"total"`
	Tenants struct {
		Buckets []struct {
			Key string `json:"key"`
			N   struct {
				Value *float64 `json:"value"`
			} `json:"n"`
		} `json:"buckets"`
	} `json:"tenants"`
}

func (sb sumBuckets) counts() (map[string]int64, int64) {
	out := map[string]int64{}
	for _, b := range sb.Tenants.Buckets {
		if b.N.Value != nil && !math.IsInf(*b.N.Value, 0) && !math.IsNaN(*b.N.Value) {
			out[b.Key] = int64(*b.N.Value)
		}
	}
	var total int64
	if v := sb.Total.Value; v != nil && !math.IsInf(*v, 0) && !math.IsNaN(*v) {
		total = int64(*v)
	}
	return out, total
}

// sumAgg sums field over the documents matching filter, in total and per tenant.
func sumAgg(filter []any, field, tenantField string) map[string]any {
	return map[string]any{
		"filter": map[string]any{"bool": map[string]any{"filter": filter}},
		"aggs": map[string]any{
			"total": map[string]any{"sum": map[string]any{"field": field}},
			"tenants": map[string]any{
				"terms": map[string]any{"field": tenantField, "size": droppedTermsMax, "order": map[string]any{"n": "desc"}},
				"aggs":  map[string]any{"n": map[string]any{"sum": map[string]any{"field": field}}},
			},
		},
	}
}

// queryDropped sums a metric's late and out-of-range records per tenant
// over the lookback, by computed_at. A missing index is no error: nothing
// was dropped.
func (m *Monitor) queryDropped(ctx context.Context, metric string, small, lookback time.Duration, now time.Time) (dropCounts, error) {
	c := dropCounts{late: map[string]int64{}, outOfRange: map[string]int64{}, windows: map[string]int64{}}
	index := catalog.LateIndex(metric)
	var lastErr error
	for _, suffix := range []string{"", ".keyword"} {
		since := map[string]any{"range": map[string]any{catalog.DocComputedAt: map[string]any{"gte": now.Add(-lookback).UnixMilli(), "format": "epoch_millis"}}}
		body, _ := json.Marshal(map[string]any{
			"size": 0,
			"aggs": map[string]any{
				"late": sumAgg([]any{since,
					map[string]any{"term": map[string]any{catalog.DocReason + suffix: DropLate}},
					map[string]any{"term": map[string]any{catalog.DocWindow + ".size" + suffix: sizeName(small)}},
				}, catalog.DocLateRecords, "tenant"+suffix),
				"oor": sumAgg([]any{since,
					map[string]any{"term": map[string]any{catalog.DocReason + suffix: DropOutOfRange}},
				}, catalog.DocRejectedRecords, "tenant"+suffix),
			},
		})
		var out struct {
			Hits struct {
				Total struct {
					Value int64 `json:"value"`
				} `json:"total"`
			} `json:"hits"`
			Aggregations struct {
				Late sumBuckets `json:"late"`
				OOR  sumBuckets `json:"oor"`
			} `json:"aggregations"`
		}
		ignore := true
		err := m.es.Do(ctx, esapi.SearchRequest{Index: []string{index}, Body: bytes.NewReader(body), IgnoreUnavailable: &ignore, AllowNoIndices: &ignore},
			"dropped records in "+index, &out)
		if esclient.HasStatus(err, http.StatusNotFound) {
			return c, nil
		}
		if esclient.HasStatus(err, http.StatusBadRequest) {
			lastErr = err // e.g. a terms aggregation on a text field: try the keyword sub-field
			continue
		}
		if err != nil {
			return c, err
		}
		c.late, c.lateTotal = out.Aggregations.Late.counts()
		c.outOfRange, c.oorTotal = out.Aggregations.OOR.counts()
		if suffix == "" && c.lateTotal+c.oorTotal > 0 && len(c.late)+len(c.outOfRange) == 0 {
			continue // counted, but no tenant buckets: the tenant field is text with a keyword sub-field
		}
		return c, nil
	}
	return c, lastErr
}

// pollDropped reads every metric's dropped records; windows holds the
// records of the smallest windows per tenant (from the freshness query).
func (m *Monitor) pollDropped(ctx context.Context, st *state, now time.Time, windows map[string]dropCounts) ([]MetricDropped, []string) {
	out := []MetricDropped{}
	var errs []string
	for _, mt := range st.cat.Metrics {
		_, small := windowSizes(mt)
		c, err := m.queryDropped(ctx, mt.Name, small, st.cfg.DroppedLookback, now)
		w := windows[mt.Name]
		c.windows, c.windowTotal = w.windows, w.windowTotal
		d := boundTenants(c, st.cfg.DroppedTenants)
		d.Metric, d.Index = mt.Name, catalog.LateIndex(mt.Name)
		if err != nil {
			d.Error = fmt.Sprintf("dropped records of %s: %v", mt.Name, err)
			errs = append(errs, d.Error)
		}
		out = append(out, d)
	}
	return out, errs
}

// signalCollector exports the input and dropped-record signals of the
// latest snapshot, and counts input reads.
type signalCollector struct {
	m          *Monitor
	inputReads *prometheus.CounterVec // by result: cached, fetched, error
}

var (
	descDropped = prometheus.NewDesc("hourglass_metric_dropped_records",
		"Records that reached a metric's job but no window, over dropped_lookback, by reason (late: behind the watermark; out_of_range: event time too far after the Kafka timestamp). Tenants: the dropped_tenants with the most, the rest as tenant=\"_other\".",
		[]string{"metric", "tenant", "reason"}, nil)
	descWindowRecords = prometheus.NewDesc("hourglass_metric_window_records",
		"Records in a metric's smallest windows that started within dropped_lookback, for the tenants of hourglass_metric_dropped_records (the denominator of the late share).",
		[]string{"metric", "tenant"}, nil)
	descInputAhead = prometheus.NewDesc("hourglass_metric_input_ahead_seconds",
		"Largest gap, over a metric's tenants, between the newest event time read from its input topic and the end of the tenant's newest window in Elasticsearch.",
		[]string{"metric"}, nil)
	descInputBehind = prometheus.NewDesc("hourglass_metric_input_behind_tenants",
		"Tenants of a metric whose input holds records in a window that is due (window + allowed lateness + input_margin) but not in Elasticsearch (AT_RISK, reason input_ahead_of_windows).",
		[]string{"metric"}, nil)
)

func newSignalCollector(m *Monitor) *signalCollector {
	c := &signalCollector{m: m, inputReads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_lagmon_input_reads_total",
		Help: "Reads of the tail of a metric's input topic, per partition, by result (cached: the read position did not move; fetched; error)."}, []string{"result"})}
	for _, r := range []string{"cached", "fetched", "error"} {
		c.inputReads.WithLabelValues(r)
	}
	return c
}

func (c *signalCollector) Describe(ch chan<- *prometheus.Desc) {
	c.inputReads.Describe(ch)
	for _, d := range []*prometheus.Desc{descDropped, descWindowRecords, descInputAhead, descInputBehind} {
		ch <- d
	}
}

func (c *signalCollector) Collect(ch chan<- prometheus.Metric) {
	c.inputReads.Collect(ch)
	snap := c.m.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, d := range snap.Dropped {
		if d.Error != "" {
			continue // unknown is absent, never 0
		}
		for _, t := range d.Tenants {
			gauge(descDropped, float64(t.Late), d.Metric, t.Tenant, DropLate)
			gauge(descDropped, float64(t.OutOfRange), d.Metric, t.Tenant, DropOutOfRange)
			gauge(descWindowRecords, float64(t.WindowRecords), d.Metric, t.Tenant)
		}
	}
	for _, f := range snap.Freshness {
		if f.InputNewest == nil {
			continue
		}
		if f.InputAhead.Known {
			gauge(descInputAhead, f.InputAhead.D.Seconds(), f.Metric)
		}
		gauge(descInputBehind, float64(f.InputBehindTenants), f.Metric)
	}
}

// windowRecords is the records of a metric's smallest windows per tenant.
func windowRecords(docs metricDocs) dropCounts {
	return dropCounts{windows: docs.recent, windowTotal: docs.recentTotal}
}

// freshnessInputs keeps the monitor's input views of the catalog's metrics.
func (m *Monitor) freshnessInputs(cat *catalog.Catalog) {
	names := map[string]bool{}
	for _, mt := range cat.Metrics {
		names[mt.Name] = true
	}
	m.input.keep(names)
}

// MaxDroppedTenants bounds Config.DroppedTenants: the tenants with their
// own hourglass_metric_dropped_records series, per metric and reason.
const MaxDroppedTenants = 200

// droppedRecords is the latest dropped-record counts (never nil).
func (m *Monitor) droppedRecords() []MetricDropped {
	m.esMu.Lock()
	defer m.esMu.Unlock()
	out := slices.Clone(m.dropped)
	if out == nil {
		out = []MetricDropped{}
	}
	return out
}
