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

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// metricDocs is what Elasticsearch holds for one metric, per tenant.
type metricDocs struct {
	missing bool                 // the alias does not exist
	hourly  map[string]time.Time // tenant → end of the newest complete hourly window
	small   map[string]time.Time // tenant → start of the newest small window that is due
	total   int64                // documents under the alias, due or not
	// latest: tenant → end of its newest small window (complete or not,
	// ending at most one small window after now); recent: tenant → records
	// (samples) of its small windows that started within the dropped
	// lookback, recentTotal their sum over every tenant.
	latest      map[string]time.Time
	recent      map[string]int64
	recentTotal int64
	err         error
}

// windowSizes picks the window whose freshness the SLA is about (1h, or the
// largest) and the smaller window used as evidence of traffic (the smallest
// one, if smaller).
func windowSizes(m catalog.Metric) (hourly, small time.Duration) {
	for _, w := range m.Windows {
		if w.Duration == time.Hour {
			hourly = time.Hour
		}
	}
	for _, w := range m.Windows {
		if hourly == 0 || (hourly != time.Hour && w.Duration > hourly) {
			hourly = max(hourly, w.Duration)
		}
	}
	if hourly == 0 {
		hourly = time.Hour
	}
	small = hourly
	for _, w := range m.Windows {
		small = min(small, w.Duration)
	}
	return hourly, small
}

func sizeName(d time.Duration) string { return catalog.Duration{Duration: d}.String() }

// dueBefore is the end of the latest window of size `hour` that is due: a
// window [S, S+hour) must be in Elasticsearch by S+hour+sla.
func dueBefore(now time.Time, hour, sla time.Duration) time.Time {
	return now.Add(-sla).UTC().Truncate(hour)
}

// pollFreshness reads freshness and job runs from Elasticsearch every
// FreshnessInterval and evaluates them against now every poll.
func (m *Monitor) pollFreshness(ctx context.Context, st *state) ([]MetricFreshness, []JobRunStatus, []string) {
	if len(st.cfg.ESURLs) == 0 || st.cat == nil {
		return []MetricFreshness{}, []JobRunStatus{}, nil
	}
	m.esMu.Lock()
	defer m.esMu.Unlock()
	now := m.now()
	if urls := strings.Join(st.cfg.ESURLs, ","); m.es == nil || urls != m.esURLs {
		c, err := esclient.New(esclient.Config{URLs: st.cfg.ESURLs, MaxRetries: -1})
		if err != nil {
			return []MetricFreshness{}, []JobRunStatus{}, []string{err.Error()}
		}
		m.es, m.esURLs, m.freshAt = c, urls, time.Time{}
	}
	if now.Sub(m.freshAt) >= st.cfg.FreshnessInterval {
		m.freshAt = now
		var errs []string
		var fresh []MetricFreshness
		windows := map[string]dropCounts{}
		for _, mt := range st.cat.Metrics {
			hour, small := windowSizes(mt)
			due := dueBefore(now, hour, mt.FreshnessSLA.Duration)
			docs := m.queryFreshness(ctx, catalog.Alias(mt.Name), hour, small, due, now, st.cfg.DroppedLookback)
			f := evaluateFreshness(mt, docs, hour, small, now)
			if docs.err != nil {
				errs = append(errs, f.Error)
			} else {
				// Freshness against the input (input.go): only with the
				// windows read, or every tenant would look behind.
				mi, err := m.readInput(ctx, mt, small, now)
				if err != nil {
					errs = append(errs, err.Error())
				}
				applyInput(&f, mi, docs.latest, small, mt.AllowedLateness.Duration, st.cfg.InputMargin)
			}
			windows[mt.Name] = windowRecords(docs)
			fresh = append(fresh, f)
		}
		m.freshnessInputs(st.cat)
		dropped, derrs := m.pollDropped(ctx, st, now, windows)
		errs = append(errs, derrs...)
		m.dropped = dropped
		jobs, err := m.queryJobRuns(ctx, st.cfg, now)
		if err != nil {
			errs = append(errs, err.Error())
		}
		if strings.Join(errs, "\n") != strings.Join(m.freshErrs, "\n") && len(errs) > 0 {
			m.log.Warn("freshness query failed", "errors", errs) // logged when the errors change, not every poll
		}
		m.freshness, m.jobRuns, m.freshErrs = fresh, jobs, errs
	}
	fresh := slices.Clone(m.freshness)
	if fresh == nil {
		fresh = []MetricFreshness{}
	}
	jobs := slices.Clone(m.jobRuns)
	if jobs == nil {
		jobs = []JobRunStatus{}
	}
	return fresh, jobs, slices.Clone(m.freshErrs)
}

// aggregation answer shapes.
type tenantBuckets struct {
	Tenants struct {
		Buckets []struct {
			Key    string `json:"key"`
			Newest struct {
				Value *float64 `json:"value"`
			} `json:"newest"`
		} `json:"buckets"`
	} `json:"tenants"`
}

func (tb tenantBuckets) times() map[string]time.Time {
	out := map[string]time.Time{}
	for _, b := range tb.Tenants.Buckets {
		if b.Newest.Value != nil && !math.IsInf(*b.Newest.Value, 0) {
			out[b.Key] = time.UnixMilli(int64(*b.Newest.Value)).UTC()
		}
	}
	return out
}

// queryFreshness asks, per tenant, for the end of the newest complete
// hourly window and the start of the newest due small window, in one
// search with two filtered terms aggregations. A window is complete once
// its end has passed (late records update it in place; freshness does not
// wait for them).
func (m *Monitor) queryFreshness(ctx context.Context, alias string, hour, small time.Duration, due, now time.Time, lookback time.Duration) metricDocs {
	docs := metricDocs{hourly: map[string]time.Time{}, small: map[string]time.Time{}, latest: map[string]time.Time{}, recent: map[string]int64{}}
	var lastErr error
	for _, suffix := range []string{"", ".keyword"} { // keyword mapping first, then dynamic-mapping text fields
		body := map[string]any{
			"size":             0,
			"track_total_hits": true,
			"aggs": map[string]any{
				"hourly": map[string]any{
					"filter": map[string]any{"bool": map[string]any{"filter": []any{
						map[string]any{"term": map[string]any{"window.size" + suffix: sizeName(hour)}},
						map[string]any{"range": map[string]any{"window.end": map[string]any{"lte": now.UnixMilli(), "format": "epoch_millis"}}},
					}}},
					"aggs": map[string]any{"tenants": map[string]any{
						"terms": map[string]any{"field": "tenant" + suffix, "size": 10000},
						"aggs":  map[string]any{"newest": map[string]any{"max": map[string]any{"field": "window.end"}}},
					}},
				},
				"small": map[string]any{
					"filter": map[string]any{"bool": map[string]any{"filter": []any{
						map[string]any{"term": map[string]any{"window.size" + suffix: sizeName(small)}},
						map[string]any{"range": map[string]any{"window.start": map[string]any{"lt": due.UnixMilli(), "format": "epoch_millis"}}},
					}}},
					"aggs": map[string]any{"tenants": map[string]any{
						"terms": map[string]any{"field": "tenant" + suffix, "size": 10000},
						"aggs":  map[string]any{"newest": map[string]any{"max": map[string]any{"field": "window.start"}}},
					}},
				},
				// The newest small window per tenant, for the input rule;
				// a window ending past now+small is junk, not progress.
				"latest": map[string]any{
					"filter": map[string]any{"bool": map[string]any{"filter": []any{
						map[string]any{"term": map[string]any{"window.size" + suffix: sizeName(small)}},
						map[string]any{"range": map[string]any{"window.end": map[string]any{"lte": now.Add(small).UnixMilli(), "format": "epoch_millis"}}},
					}}},
					"aggs": map[string]any{"tenants": map[string]any{
						"terms": map[string]any{"field": "tenant" + suffix, "size": 10000},
						"aggs":  map[string]any{"newest": map[string]any{"max": map[string]any{"field": "window.end"}}},
					}},
				},
				// Records in the small windows of the dropped lookback (the
				// denominator of the late share).
				"recent": sumAgg([]any{
					map[string]any{"term": map[string]any{"window.size" + suffix: sizeName(small)}},
					map[string]any{"range": map[string]any{"window.start": map[string]any{"gte": now.Add(-lookback).UnixMilli(), "lte": now.UnixMilli(), "format": "epoch_millis"}}},
				}, "samples", "tenant"+suffix),
			},
		}
		data, _ := json.Marshal(body)
		var out struct {
			Hits struct {
				Total struct {
					Value int64 `json:"value"`
				} `json:"total"`
			} `json:"hits"`
			Aggregations struct {
				Hourly tenantBuckets `json:"hourly"`
				Small  tenantBuckets `json:"small"`
				Latest tenantBuckets `json:"latest"`
				Recent sumBuckets    `json:"recent"`
			} `json:"aggregations"`
		}
		ignore := true
		err := m.es.Do(ctx, esapi.SearchRequest{Index: []string{alias}, Body: bytes.NewReader(data), IgnoreUnavailable: &ignore, AllowNoIndices: &ignore},
			"freshness of "+alias, &out)
		if esclient.HasStatus(err, http.StatusNotFound) {
			docs.missing = true
			return docs
		}
		if esclient.HasStatus(err, http.StatusBadRequest) {
			lastErr = err
			continue
		}
		if err != nil {
			docs.err = err
			return docs
		}
		docs.hourly, docs.small = out.Aggregations.Hourly.times(), out.Aggregations.Small.times()
		docs.latest = out.Aggregations.Latest.times()
		docs.recent, docs.recentTotal = out.Aggregations.Recent.counts()
		docs.total = out.Hits.Total.Value
		if len(docs.hourly) == 0 && len(docs.small) == 0 && suffix == "" && docs.total == 0 {
			// Nothing under keyword fields: maybe the index is dynamically mapped.
			lastErr = nil
			continue
		}
		return docs
	}
	docs.err = lastErr
	return docs
}

// evaluateFreshness applies the freshness rule to one metric's documents:
// a tenant is BREACH when it has a small window that is due (so it had
// traffic in a due hour) at or after the end of its newest hourly window —
// the hour holding that traffic is missing past its deadline. For a metric
// without a smaller window, a tenant is BREACH when the hour after its newest
// one is due. No documents at all is NO_DATA; documents of which none is due yet
// (a pipeline younger than its first deadline) is OK.
func evaluateFreshness(mt catalog.Metric, docs metricDocs, hour, small time.Duration, now time.Time) MetricFreshness {
	sla := mt.FreshnessSLA.Duration
	f := MetricFreshness{Metric: mt.Name, Alias: catalog.Alias(mt.Name), SLA: Seconds{sla, true}, Status: status.NoData, Tenants: []TenantFreshness{}}
	if docs.err != nil {
		f.Error = fmt.Sprintf("freshness of %s: %v", f.Alias, docs.err)
		return f
	}
	if docs.missing {
		return f
	}
	due := dueBefore(now, hour, sla)
	tenants := map[string]bool{}
	for t := range docs.hourly {
		tenants[t] = true
	}
	for t := range docs.small {
		tenants[t] = true
	}
	names := make([]string, 0, len(tenants))
	for t := range tenants {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		tf := TenantFreshness{Tenant: t, Status: status.OK, AgeUnknownReason: ReasonNoWindow}
		newest, hasHourly := docs.hourly[t]
		if hasHourly {
			n := newest
			tf.Newest, tf.Age, tf.AgeUnknownReason = &n, Seconds{max(0, now.Sub(newest)), true}, ""
			if f.Newest == nil || newest.After(*f.Newest) {
				n := newest
				f.Newest = &n
			}
		}
		var missing time.Time
		if s, ok := docs.small[t]; ok && small < hour {
			if !hasHourly || !s.Before(newest) {
				missing = s.Truncate(hour)
			}
		} else if small >= hour && hasHourly && !newest.Add(hour).After(due) {
			// Only a metric without smaller windows: with them, a tenant
			// without a due small window after its newest hour has shown no
			// traffic in a due hour (idle for a day, say), which is no breach.
			missing = newest
		}
		if !missing.IsZero() {
			tf.Status, tf.Missing = status.Breach, &missing
		}
		if tf.Status > f.Status || f.Status == status.NoData {
			f.Status = max(tf.Status, status.OK)
		}
		f.Tenants = append(f.Tenants, tf)
	}
	if (len(names) > 0 || docs.total > 0) && f.Status == status.NoData {
		f.Status = status.OK
	}
	return f
}

// queryJobRuns reads the latest run of each metric's batch job started
// within the lookback; a run longer than the period (or still running
// past it) is flagged.
func (m *Monitor) queryJobRuns(ctx context.Context, cfg Config, now time.Time) ([]JobRunStatus, error) {
	body, _ := json.Marshal(map[string]any{
		"size":  1000,
		"query": map[string]any{"range": map[string]any{catalog.RunStart: map[string]any{"gte": now.Add(-cfg.JobLookback).UnixMilli(), "format": "epoch_millis"}}},
		"sort":  []any{map[string]any{catalog.RunStart: map[string]any{"order": "desc"}}},
	})
	var out struct {
		Hits struct {
			Hits []struct {
				Source map[string]json.RawMessage `json:"_source"` // a job-run document (catalog.Run*)
			} `json:"hits"`
		} `json:"hits"`
	}
	ignore := true
	err := m.es.Do(ctx, esapi.SearchRequest{Index: []string{cfg.JobRunsIndex}, Body: bytes.NewReader(body), IgnoreUnavailable: &ignore, AllowNoIndices: &ignore},
		"job runs in "+cfg.JobRunsIndex, &out)
	if esclient.HasStatus(err, http.StatusNotFound) {
		return []JobRunStatus{}, nil
	}
	if err != nil {
		return []JobRunStatus{}, err
	}
	seen := map[string]bool{}
	runs := []JobRunStatus{}
	for _, h := range out.Hits.Hits {
		var r JobRunStatus
		var secs float64
		_ = json.Unmarshal(h.Source[catalog.RunMetric], &r.Metric)
		_ = json.Unmarshal(h.Source[catalog.RunHour], &r.Hour)
		_ = json.Unmarshal(h.Source[catalog.RunStart], &r.Start)
		_ = json.Unmarshal(h.Source[catalog.RunDurationSeconds], &secs) // absent while running
		_ = json.Unmarshal(h.Source[catalog.RunRecords], &r.Records)
		_ = json.Unmarshal(h.Source[catalog.RunOutcome], &r.Outcome)
		if r.Metric == "" || seen[r.Metric] {
			continue
		}
		seen[r.Metric] = true
		d := time.Duration(secs * float64(time.Second))
		r.Duration = Seconds{d, true}
		running := r.Outcome == catalog.RunRunning && now.Sub(r.Start) > cfg.JobPeriod
		if d > cfg.JobPeriod || running {
			r.Overrun = true
			r.Advice = fmt.Sprintf("the run took longer than its %s period: needs more resources", cfg.JobPeriod)
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b JobRunStatus) int { return strings.Compare(a.Metric, b.Metric) })
	return runs, nil
}
