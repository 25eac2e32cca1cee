package lagmon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Freshness against the input. The clock-based rule (freshness.go) only
// sees a missing hour an hour after it is due. A metric whose job consumes
// its records but writes no window for them (a poisoned watermark counts
// every record late; a filter or a cast drops them) is visible much sooner
// by comparing what went in with what came out: the event times of the
// records the job has consumed from hourglass.metric.<m>, per tenant (the
// record key), against the newest window of the tenant in Elasticsearch.
//
// Why the topic and not the job's progress: the progress is the job's own
// account (it is what a poisoned checkpoint gets wrong, and it lives in the
// driver's state directory, out of the monitor's reach in a deployment); the
// topic is what the job was given, and the monitor already reads it.
//
// Cost: per metric and freshness poll one Metadata and one ListOffsets
// request; per partition one Fetch of at most inputFetchBytes, and none
// while the read position (the job's committed offset, else the end) does
// not move. Only the last inputTailRecords records before the position are
// read when it moved further: a tenant whose records all fall in the skipped
// part is not seen moving that poll (a missed signal, never a false one).

const (
	// inputTailRecords: at most this many records are read per partition
	// and poll, the newest before the read position.
	inputTailRecords = 256
	// inputFetchBytes bounds one Fetch answer (the broker returns at least
	// one batch even when larger).
	inputFetchBytes = 1 << 20
	// inputTenantsMax bounds the tenants tracked per metric; records of
	// further tenants are counted in overflow, not tracked.
	inputTenantsMax = 10000
	// inputWindowsMax bounds the window starts kept per tenant.
	inputWindowsMax = 64
	// inputTimestampMax: a record's "timestamp" longer than this is not read.
	inputTimestampMax = 64
)

// ReasonInputAhead: the metric's input holds records of the tenant in a
// window that should be in Elasticsearch by now (window size + allowed
// lateness + input margin behind the newest input), and the tenant's newest
// window ends before it.
const ReasonInputAhead = "input_ahead_of_windows"

// ReasonNoInputSeen: input_ahead_seconds is null because the monitor has not
// read a record of the tenant from the metric's topic.
const ReasonNoInputSeen = "no_input_seen"

// ReasonNoWindow: a tenant's freshness_seconds (and input_ahead_seconds) is
// null because it has no complete window in Elasticsearch yet.
const ReasonNoWindow = "no_window"

// tenantInput is what the monitor has seen of one tenant in a metric's input.
type tenantInput struct {
	newest  time.Time   // newest event time
	windows []time.Time // distinct starts of the smallest window holding its records, ascending, at most inputWindowsMax
}

// observe records an event time, with w the metric's smallest window.
func (ti *tenantInput) observe(ts time.Time, w time.Duration) {
	if ts.After(ti.newest) {
		ti.newest = ts
	}
	s := ts.Truncate(w)
	i, found := slices.BinarySearchFunc(ti.windows, s, func(a, b time.Time) int { return a.Compare(b) })
	if found {
		return
	}
	ti.windows = slices.Insert(ti.windows, i, s)
	if len(ti.windows) > inputWindowsMax {
		ti.windows = slices.Delete(ti.windows, 0, len(ti.windows)-inputWindowsMax)
	}
}

// dueWindowEnd returns the end of the newest window holding the tenant's
// records that must be in Elasticsearch when the metric's input has reached
// inputNewest: one whose end is at least lateness + margin behind it.
// Its windows older than that one are forgotten.
func (ti *tenantInput) dueWindowEnd(inputNewest time.Time, w, lateness, margin time.Duration) (time.Time, bool) {
	horizon := inputNewest.Add(-lateness - margin)
	i := len(ti.windows) - 1
	for i >= 0 && ti.windows[i].Add(w).After(horizon) {
		i--
	}
	if i < 0 {
		return time.Time{}, false
	}
	ti.windows = ti.windows[i:]
	return ti.windows[0].Add(w), true
}

// inputVerdict is the input rule's answer for one tenant.
type inputVerdict struct {
	Ahead   Seconds    // newest input event time − end of the newest window (floored at 0)
	DueEnd  *time.Time // end of the window that must exist by now
	AtRisk  bool
	Unknown string // why Ahead is null
}

// evaluateInput is the input rule for one tenant, pure: the tenant is
// AT_RISK when a window holding its records is due (dueEnd) and its newest
// window in Elasticsearch (windowEnd, hasWindow) ends before it. A quiet
// tenant has no due window newer than its last document: OK.
func evaluateInput(in *tenantInput, inputNewest, windowEnd time.Time, hasWindow bool, w, lateness, margin time.Duration) inputVerdict {
	var v inputVerdict
	if in == nil || in.newest.IsZero() {
		v.Unknown = ReasonNoInputSeen
		return v
	}
	if hasWindow {
		v.Ahead = Seconds{max(0, in.newest.Sub(windowEnd)), true}
	} else {
		v.Unknown = ReasonNoWindow
	}
	due, ok := in.dueWindowEnd(inputNewest, w, lateness, margin)
	if !ok {
		return v
	}
	v.DueEnd = &due
	v.AtRisk = !hasWindow || windowEnd.Before(due)
	return v
}

// metricInput is the monitor's view of one metric's input.
type metricInput struct {
	scanned  map[int]int64 // partition → offset read up to (exclusive)
	tenants  map[string]*tenantInput
	newest   time.Time // newest event time of any tenant, at most the clock
	overflow int64     // records of tenants past inputTenantsMax
	bad      int64     // records without a readable timestamp
}

// inputTracker holds every metric's input view (under Monitor.esMu).
type inputTracker struct {
	metrics map[string]*metricInput
}

func (t *inputTracker) metric(name string) *metricInput {
	if t.metrics == nil {
		t.metrics = map[string]*metricInput{}
	}
	mi, ok := t.metrics[name]
	if !ok {
		mi = &metricInput{scanned: map[int]int64{}, tenants: map[string]*tenantInput{}}
		t.metrics[name] = mi
	}
	return mi
}

// keep forgets metrics no longer in the catalog.
func (t *inputTracker) keep(names map[string]bool) {
	for n := range t.metrics {
		if !names[n] {
			delete(t.metrics, n)
		}
	}
}

// add records one input record of a metric; now caps event times (a
// future timestamp must not make every tenant look behind).
func (mi *metricInput) add(tenant string, value []byte, w time.Duration, now time.Time) {
	var rec struct {
		Timestamp string `json:"timestamp"`
		Tenant    string `json:"tenant"`
	}
	if err := json.Unmarshal(value, &rec); err != nil || len(rec.Timestamp) > inputTimestampMax {
		mi.bad++
		return
	}
	ts, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
	if err != nil {
		mi.bad++
		return
	}
	if tenant == "" {
		tenant = rec.Tenant
	}
	ts = minTime(ts.UTC(), now)
	ti, ok := mi.tenants[tenant]
	if !ok {
		if len(mi.tenants) >= inputTenantsMax {
			mi.overflow++
			return
		}
		ti = &tenantInput{}
		mi.tenants[tenant] = ti
	}
	ti.observe(ts, w)
	if ts.After(mi.newest) {
		mi.newest = ts
	}
}

func minTime(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}

// readPosition is where the job's input ends: the metric group's committed
// offset when the latest snapshot knows it (records the job has consumed;
// a backlog is the group's lag, reported there), else the partition's end.
func readPosition(end int64, committed map[int]int64, p int) int64 {
	if c, ok := committed[p]; ok && c >= 0 && c <= end {
		return c
	}
	return end
}

// tailStart is the first offset to read for a partition: after what was
// read before, and at most inputTailRecords before pos.
func tailStart(scanned int64, hasScanned bool, pos int64) int64 {
	from := max(0, pos-inputTailRecords)
	if hasScanned && scanned > from && scanned <= pos {
		from = scanned
	}
	return from
}

// committedOf returns the committed offsets of group on topic from the
// latest snapshot (partitions whose commit is unknown are absent).
func committedOf(snap *Snapshot, group, topic string) map[int]int64 {
	out := map[int]int64{}
	if snap == nil {
		return out
	}
	for _, g := range snap.Groups {
		if g.Group != group {
			continue
		}
		for _, p := range g.Partitions {
			if p.Topic == topic && p.Committed.Known {
				out[p.Partition] = p.Committed.N
			}
		}
	}
	return out
}

// readInput brings one metric's input view up to date: one Metadata and one
// ListOffsets request, and one Fetch per partition whose read position moved.
func (m *Monitor) readInput(ctx context.Context, mt catalog.Metric, small time.Duration, now time.Time) (*metricInput, error) {
	mi := m.input.metric(mt.Name)
	topic := topology.MetricTopic(mt.Name)
	meta, err := m.reads.Metadata(ctx, []string{topic})
	if err != nil {
		m.metrics.signals.inputReads.WithLabelValues("error").Inc()
		return mi, fmt.Errorf("input of %s: %w", mt.Name, err)
	}
	tm, ok := meta[topic]
	if !ok {
		return mi, nil // no topic yet: no input
	}
	if tm.Err != nil {
		m.metrics.signals.inputReads.WithLabelValues("error").Inc()
		return mi, fmt.Errorf("input of %s: metadata of %s: %w", mt.Name, topic, tm.Err)
	}
	committed := committedOf(m.Snapshot(), topology.MetricGroup(mt.Name), topic)
	byLeader := map[string][]int{}
	for _, p := range tm.Partitions {
		if p.Leader != "" {
			byLeader[p.Leader] = append(byLeader[p.Leader], p.ID)
		}
	}
	var errs []error
	for leader, parts := range byLeader {
		ends, failed, err := m.reads.ListOffsets(ctx, leader, topic, parts, kafkawire.Latest, true)
		if err != nil {
			m.metrics.signals.inputReads.WithLabelValues("error").Inc()
			errs = append(errs, err)
			continue
		}
		for _, p := range parts {
			end, ok := ends[p]
			if !ok || failed[p] != nil {
				m.metrics.signals.inputReads.WithLabelValues("error").Inc()
				errs = append(errs, fmt.Errorf("end of %s/%d: %v", topic, p, failed[p]))
				continue
			}
			if err := m.readTail(ctx, mi, leader, topic, p, readPosition(end, committed, p), small, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return mi, fmt.Errorf("input of %s: %w", mt.Name, errors.Join(errs...))
	}
	return mi, nil
}

// readTail reads the records of one partition between what was read before
// (or inputTailRecords before pos) and pos.
func (m *Monitor) readTail(ctx context.Context, mi *metricInput, leader, topic string, p int, pos int64, small time.Duration, now time.Time) error {
	scanned, has := mi.scanned[p]
	if has && scanned == pos {
		m.metrics.signals.inputReads.WithLabelValues("cached").Inc()
		return nil
	}
	from := tailStart(scanned, has, pos)
	if from >= pos {
		mi.scanned[p] = pos
		return nil
	}
	part, err := m.reads.Fetch(ctx, leader, topic, p, from, inputFetchBytes, true)
	if errors.Is(err, kafka.OffsetOutOfRange) { // the tail was deleted: start at the log start
		starts, _, lerr := m.reads.ListOffsets(ctx, leader, topic, []int{p}, kafkawire.Earliest, false)
		if lerr == nil {
			if ls, ok := starts[p]; ok && ls > from {
				from = ls
				part, err = m.reads.Fetch(ctx, leader, topic, p, from, inputFetchBytes, true)
			}
		}
	}
	if err != nil {
		m.metrics.signals.inputReads.WithLabelValues("error").Inc()
		return fmt.Errorf("read the input of %s/%d at %d: %w", topic, p, from, err)
	}
	m.metrics.signals.inputReads.WithLabelValues("fetched").Inc()
	recs, next := part.Visible()
	for _, r := range recs {
		if r.Offset >= from && r.Offset < pos {
			mi.add(string(r.Key), r.Value, small, now)
		}
	}
	if next < 0 || next > pos {
		next = pos
	}
	mi.scanned[p] = max(next, from)
	return nil
}

// applyInput adds the input rule to a metric's freshness: tenants with
// input but no due document are added; a tenant AT_RISK by input raises the
// metric to at least AT_RISK.
func applyInput(f *MetricFreshness, mi *metricInput, latest map[string]time.Time, small, lateness, margin time.Duration) {
	if mi == nil || len(mi.tenants) == 0 {
		return
	}
	newest := mi.newest
	f.InputNewest = &newest
	have := map[string]int{}
	for i, t := range f.Tenants {
		have[t.Tenant] = i
	}
	names := make([]string, 0, len(mi.tenants))
	for t := range mi.tenants {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		if _, ok := have[t]; ok {
			continue
		}
		f.Tenants = append(f.Tenants, TenantFreshness{Tenant: t, Status: status.OK, AgeUnknownReason: ReasonNoWindow})
		have[t] = len(f.Tenants) - 1
	}
	behind := 0
	for i := range f.Tenants {
		tf := &f.Tenants[i]
		end, ok := latest[tf.Tenant]
		v := evaluateInput(mi.tenants[tf.Tenant], newest, end, ok, small, lateness, margin)
		if in := mi.tenants[tf.Tenant]; in != nil {
			n := in.newest
			tf.InputNewest = &n
		}
		tf.InputAhead, tf.InputAheadUnknownReason, tf.DueWindowEnd = v.Ahead, v.Unknown, v.DueEnd
		if v.Ahead.Known {
			tf.InputAheadUnknownReason = ""
			if !f.InputAhead.Known || v.Ahead.D > f.InputAhead.D {
				f.InputAhead = v.Ahead
			}
		}
		if v.AtRisk {
			behind++
			tf.Reason = ReasonInputAhead
			tf.Status = max(tf.Status, status.AtRisk)
		}
	}
	f.InputBehindTenants = behind
	if behind > 0 && f.Status < status.AtRisk {
		f.Status = status.AtRisk
	}
	slices.SortFunc(f.Tenants, func(a, b TenantFreshness) int { return strings.Compare(a.Tenant, b.Tenant) })
}

// inputAlertDescription describes a metric AT_RISK by the input rule, for
// the monitor's own alert.
func inputAlertDescription(f MetricFreshness) string {
	var behind []string
	for _, t := range f.Tenants {
		if t.Reason == ReasonInputAhead {
			behind = append(behind, t.Tenant)
		}
	}
	if len(behind) > 10 {
		behind = append(behind[:10], fmt.Sprintf("and %d more", len(behind)-10))
	}
	return fmt.Sprintf("metric %s: its input moves but its windows do not (%s, input ahead by %s) for tenants %s",
		f.Metric, ReasonInputAhead, f.InputAhead.D.Round(time.Second), strings.Join(behind, ", "))
}
