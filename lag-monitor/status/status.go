// Package status holds the lag monitor's status rules as pure functions: a
// ring of samples of one partition (offsets, time lag, last commit time) goes
// in, a status and a forecast come out. Nothing here talks to Kafka or reads
// the clock. The rules are written out in lag-monitor/README.md; the tables
// in status_test.go are their executable form.
package status

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Status is the state of a partition, a group or a metric. Larger is worse,
// so the status of a group is the maximum of its partitions'.
type Status int

const (
	OK     Status = iota
	NoData        // freshness only: no documents yet
	// Unknown: this poll could not read (or read inconsistent) offsets or
	// the record timestamp the rules need. Never OK: a lag that was not read
	// is not 0.
	Unknown
	Warn
	Rewind
	AtRisk
	// OpenTransaction: a transaction has been open longer than
	// Params.OpenTxnAfter past the last stable offset of a partition a
	// READ_COMMITTED group reads: the group cannot read past it, and the
	// producer, not the consumer, holds it up.
	OpenTransaction
	// Uncommitted: records wait in a partition the group never committed,
	// counted from its start position (see Reset).
	Uncommitted
	Stall
	Stop
	Breach
	DataLoss
)

var names = [...]string{"OK", "NO_DATA", "UNKNOWN", "WARN", "REWIND", "AT_RISK", "OPEN_TRANSACTION", "UNCOMMITTED", "STALL", "STOP", "BREACH", "DATA_LOSS"}

// All lists every status, least severe first.
func All() []Status {
	out := make([]Status, len(names))
	for i := range names {
		out[i] = Status(i)
	}
	return out
}

func (s Status) String() string {
	if s < 0 || int(s) >= len(names) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return names[s]
}

// MarshalText writes the status by name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range names {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Reset is where a group starts reading a partition it has never committed
// (Kafka's auto.offset.reset).
type Reset int

const (
	// Earliest: at the log start offset. Every record in the partition is
	// the group's work; its lag is end − log start until it commits.
	Earliest Reset = iota
	// Latest: at the high watermark when it first fetches, which the monitor
	// cannot see. The lag is unknown until it commits; records that arrive
	// while it is watched are its work.
	Latest
)

var resetNames = [...]string{"earliest", "latest"}

func (r Reset) String() string {
	if r < 0 || int(r) >= len(resetNames) {
		return fmt.Sprintf("Reset(%d)", int(r))
	}
	return resetNames[r]
}

// MarshalText writes the reset by name.
func (r Reset) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads "earliest" or "latest".
func (r *Reset) UnmarshalText(b []byte) error {
	for i, n := range resetNames {
		if n == string(b) {
			*r = Reset(i)
			return nil
		}
	}
	return fmt.Errorf("unknown start position %q: want earliest or latest", b)
}

// Sample is one observation of one partition of one group. A poll that could
// not read the partition's offsets makes no sample (see Unread).
type Sample struct {
	At time.Time
	// Committed is the group's committed offset; meaningful when HasCommit.
	Committed int64
	HasCommit bool
	// Reset is where the group starts when it has no commit. Start is, for
	// Latest, the high watermark when the monitor first saw the partition
	// uncommitted: records past it arrived while it was watched.
	Reset Reset
	Start int64
	// LogStart and End are the partition's log start offset and high watermark.
	LogStart, End int64
	// TimeLag is now minus the timestamp of the record the group reads next
	// (at the committed offset, or at the log start for an Earliest group
	// without a commit), 0 when caught up. TimeLagUnknown: it could not be
	// read this poll.
	TimeLag        time.Duration
	TimeLagUnknown bool
	// LastCommit is when the group last committed this partition (the append
	// time of its commit record); zero when unknown.
	LastCommit time.Time
	// LastStable is the partition's last stable offset. ReadCommitted: the
	// group reads with isolation.level=read_committed, so its readable end
	// is LastStable, not End (unless its commit is already past LastStable,
	// which only a read_uncommitted consumer can do).
	LastStable    int64
	ReadCommitted bool
	// NoWork: between the group's position and its readable end there are
	// only control records (transaction markers) and aborted records. They
	// are not work: the lag is 0.
	NoWork bool
	// OpenTxnAge is the age of the first record past the last stable offset
	// (the first record of the oldest open transaction) when End > LastStable.
	OpenTxnAge time.Duration
}

// readableEnd is the offset up to which the group has records to read: the
// last stable offset for a read_committed group, the high watermark otherwise.
func (s Sample) readableEnd() int64 {
	if s.ReadCommitted && s.LastStable <= s.End && (!s.HasCommit || s.Committed <= s.LastStable) {
		return s.LastStable
	}
	return s.End
}

// workEnd is the end whose growth is the produce rate: the last stable offset
// for a read_committed group (records become readable when committed), the
// high watermark otherwise.
func (s Sample) workEnd() int64 {
	if s.ReadCommitted && s.LastStable <= s.End {
		return s.LastStable
	}
	return s.End
}

// OpenTxn reports the records past the last stable offset (open
// transactions) a read_committed group cannot read yet.
func (s Sample) OpenTxn() int64 {
	if !s.ReadCommitted {
		return 0
	}
	return max(0, s.End-s.readableEnd())
}

// Lag is the offset lag, floored at 0: readable end − committed, or for a
// partition never committed by an Earliest group readable end − log start;
// 0 when only control or aborted records lie in between (NoWork). ok is
// false for a Latest group that never committed (its position is unknown).
func (s Sample) Lag() (lag int64, ok bool) {
	switch {
	case s.HasCommit && s.NoWork, !s.HasCommit && s.Reset == Earliest && s.NoWork:
		return 0, true
	case s.HasCommit:
		return max(0, s.readableEnd()-s.Committed), true
	case s.Reset == Earliest:
		return max(0, s.readableEnd()-s.LogStart), true
	}
	return 0, false
}

// pending is the number of records the group has not committed: the lag,
// or for a Latest group without a commit the records that arrived since the
// monitor first saw it.
func (s Sample) pending() int64 {
	if l, ok := s.Lag(); ok {
		return l
	}
	return max(0, s.readableEnd()-max(s.Start, s.LogStart))
}

// timeLagKnown: the time lag is meaningful and was read.
func (s Sample) timeLagKnown() bool {
	_, ok := s.Lag()
	return ok && !s.TimeLagUnknown
}

// Params are the thresholds of the rules.
type Params struct {
	Window  time.Duration // the evaluation and rate window
	SLA     time.Duration // time lag above this is BREACH
	Horizon time.Duration // a forecast SLA crossing within this is AT_RISK
	// OpenTxnAfter: a transaction open longer than this past the last stable
	// offset of a read_committed group's partition is OPEN_TRANSACTION.
	OpenTxnAfter time.Duration
}

// Forecast is what the partition's (or group's) rates over the window predict.
type Forecast struct {
	// Known is false when the ring spans less than half the window: no rates.
	Known bool
	// ProduceRate and ConsumeRate are records per second over the window.
	ProduceRate, ConsumeRate float64
	// Drains says whether the lag reaches 0 at current rates, in DrainETA.
	Drains   bool
	DrainETA time.Duration
	// Crosses says whether the time lag reaches the SLA at current rates, in
	// CrossIn (0 when already over).
	Crosses bool
	CrossIn time.Duration
}

// Result is the evaluation of one partition.
type Result struct {
	Status Status
	// Conditions lists every rule that holds, most severe first; Status is
	// the first (OK when none holds).
	Conditions []Status
	// Lost is the number of records the group can no longer read (DATA_LOSS).
	Lost     int64
	Forecast Forecast
}

// MarshalJSON writes durations in seconds.
func (f Forecast) MarshalJSON() ([]byte, error) {
	type out struct {
		Known       bool     `json:"known"`
		ProduceRate float64  `json:"produce_rate"`
		ConsumeRate float64  `json:"consume_rate"`
		DrainETA    *float64 `json:"drain_eta_seconds"`
		CrossIn     *float64 `json:"sla_crossing_in_seconds"`
	}
	o := out{Known: f.Known, ProduceRate: round3(f.ProduceRate), ConsumeRate: round3(f.ConsumeRate)}
	if f.Known && f.Drains {
		v := f.DrainETA.Seconds()
		o.DrainETA = &v
	}
	if f.Crosses {
		v := f.CrossIn.Seconds()
		o.CrossIn = &v
	}
	return json.Marshal(o)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// inWindow returns the samples of ring newer than the window start, plus
// whether the ring reaches back to the window start (a sample at or before it).
func inWindow(ring []Sample, w time.Duration) (win []Sample, covered bool) {
	if len(ring) == 0 {
		return nil, false
	}
	from := ring[len(ring)-1].At.Add(-w)
	i := sort.Search(len(ring), func(i int) bool { return ring[i].At.After(from) })
	return ring[i:], i > 0
}

// Evaluate applies the rules to a partition's ring of samples, oldest first.
// An empty ring is OK.
func Evaluate(ring []Sample, p Params) Result {
	var res Result
	if len(ring) == 0 {
		res.Status = OK
		return res
	}
	last := ring[len(ring)-1]
	win, covered := inWindow(ring, p.Window)
	res.Forecast = Predict(ring, p)
	add := func(s Status) { res.Conditions = append(res.Conditions, s) }

	if !last.HasCommit {
		// Never committed: records waiting are UNCOMMITTED at once, and STOP
		// once they have waited a whole window with no commit at all.
		if last.pending() > 0 {
			add(Uncommitted)
			pendingAll := covered && !slices.ContainsFunc(win, func(s Sample) bool { return s.HasCommit || s.pending() == 0 })
			if pendingAll && !slices.ContainsFunc(ring, func(s Sample) bool { return s.HasCommit }) {
				add(Stop)
			}
		}
		if last.timeLagKnown() && last.TimeLag > p.SLA {
			add(Breach)
		}
		if last.TimeLagUnknown && last.pending() > 0 {
			add(Unknown)
		}
		if !slices.Contains(res.Conditions, Breach) && res.Forecast.Crosses && res.Forecast.CrossIn <= p.Horizon {
			add(AtRisk)
		}
		if last.openTxnHeld(p) {
			add(OpenTransaction)
		}
		return finish(res)
	}

	// DATA_LOSS: the log start passed the committed offset.
	for _, s := range win {
		if s.HasCommit && s.Committed < s.LogStart {
			res.Lost = max(res.Lost, s.LogStart-s.Committed)
		}
	}
	if res.Lost > 0 {
		add(DataLoss)
	}
	if last.timeLagKnown() && last.TimeLag > p.SLA {
		add(Breach)
	}
	if lag, _ := last.Lag(); last.TimeLagUnknown && lag > 0 {
		add(Unknown) // BREACH cannot be judged without the time lag
	}

	lagAll := covered && len(win) > 0 && !slices.ContainsFunc(win, func(s Sample) bool {
		l, ok := s.Lag()
		return !ok || l == 0
	})
	moved := committedMoved(win, ring, covered)
	commitInWindow := !last.LastCommit.IsZero() && last.LastCommit.After(last.At.Add(-p.Window))
	if lagAll && !moved {
		switch {
		case commitInWindow:
			add(Stall)
		default:
			// No commit in the window, or commit times unknown: nothing shows
			// the consumer is alive.
			add(Stop)
		}
	}
	if !slices.Contains(res.Conditions, Breach) && res.Forecast.Crosses && res.Forecast.CrossIn <= p.Horizon {
		add(AtRisk)
	}
	if last.openTxnHeld(p) {
		add(OpenTransaction)
	}
	// REWIND looks at the same span as "moved" (from the sample before the
	// window): when the drop reaches the window's edge, the offset still
	// counts as moved, so REWIND holds too, and the status never falls to
	// OK for a poll between REWIND and STOP.
	span := win
	if covered {
		span = ring[len(ring)-len(win)-1:]
	}
	for i := 1; i < len(span); i++ {
		prev := span[i-1]
		if prev.HasCommit && span[i].HasCommit && span[i].Committed < prev.Committed {
			add(Rewind)
			break
		}
	}
	if lagAll && moved && len(win) >= 3 && trendingUp(win) {
		add(Warn)
	}
	return finish(res)
}

// openTxnHeld: a read_committed group's next records are held back by a
// transaction open longer than p.OpenTxnAfter.
func (s Sample) openTxnHeld(p Params) bool {
	return s.OpenTxn() > 0 && s.OpenTxnAge >= p.OpenTxnAfter
}

// committedMoved reports whether the committed offset changed within the
// window (comparing with the sample just before the window when there is one).
func committedMoved(win, ring []Sample, covered bool) bool {
	ref := win[0]
	if covered {
		ref = ring[len(ring)-len(win)-1]
	}
	for _, s := range win {
		if s.HasCommit != ref.HasCommit || s.Committed != ref.Committed {
			return true
		}
	}
	return false
}

// trendingUp: the Theil–Sen slope (median of all pairwise slopes) of the lag
// is positive and the last lag exceeds the first. A single dip moves a few
// pairwise slopes, not the median.
func trendingUp(win []Sample) bool {
	first, _ := win[0].Lag()
	last, _ := win[len(win)-1].Lag()
	if last <= first {
		return false
	}
	var slopes []float64
	for i := range win {
		li, _ := win[i].Lag()
		for j := i + 1; j < len(win); j++ {
			dt := win[j].At.Sub(win[i].At).Seconds()
			if dt <= 0 {
				continue
			}
			lj, _ := win[j].Lag()
			slopes = append(slopes, float64(lj-li)/dt)
		}
	}
	if len(slopes) == 0 {
		return false
	}
	slices.Sort(slopes)
	n := len(slopes)
	median := slopes[n/2]
	if n%2 == 0 {
		median = (slopes[n/2-1] + slopes[n/2]) / 2
	}
	return median > 0
}

// Unread is the result of a partition whose offsets this poll could not read
// (or read inconsistently): the rules over its earlier samples, which were
// read, plus UNKNOWN. It is never OK.
func Unread(ring []Sample, p Params) Result {
	res := Evaluate(ring, p)
	res.Conditions = append(res.Conditions, Unknown)
	return finish(res)
}

func finish(res Result) Result {
	slices.SortStableFunc(res.Conditions, func(a, b Status) int { return int(b) - int(a) })
	res.Conditions = slices.Compact(res.Conditions)
	res.Status = OK
	if len(res.Conditions) > 0 {
		res.Status = res.Conditions[0]
	}
	return res
}

// Predict computes rates over the window and what they forecast.
func Predict(ring []Sample, p Params) Forecast {
	var f Forecast
	if len(ring) == 0 {
		return f
	}
	last := ring[len(ring)-1]
	if last.timeLagKnown() && last.TimeLag >= p.SLA {
		f.Crosses = true // already there; no rates needed
	}
	if len(ring) < 2 {
		return f
	}
	// Rates over the latest half window: from the newest sample at or before
	// it. They follow the data: half a window after a burst ends, the
	// produce rate is 0 again, and a drain shows in its ETA.
	from := last.At.Add(-p.Window / 2)
	i := sort.Search(len(ring), func(i int) bool { return ring[i].At.After(from) })
	if i == 0 {
		return f // the ring does not reach back half a window: no rates yet
	}
	first := ring[i-1]
	span := last.At.Sub(first.At)
	if span <= 0 {
		return f
	}
	f.Known = true
	f.ProduceRate = max(0, float64(last.workEnd()-first.workEnd())/span.Seconds())
	if first.HasCommit && last.HasCommit {
		f.ConsumeRate = max(0, float64(last.Committed-first.Committed)/span.Seconds())
	}
	lag, ok := last.Lag()
	if !ok {
		return f
	}
	pr, cr := f.ProduceRate, f.ConsumeRate
	switch {
	case lag == 0:
		f.Drains = true
	case cr > pr:
		f.Drains = true
		f.DrainETA = seconds(float64(lag) / (cr - pr))
	}
	if last.TimeLagUnknown {
		return f // no SLA crossing from a time lag that was not read
	}

	left := p.SLA - last.TimeLag
	switch {
	case left <= 0:
		f.Crosses, f.CrossIn = true, 0
	case pr > 0:
		// The consumer's position advances cr/pr seconds of record time per
		// second of wall time (records arriving evenly), so the time lag
		// grows at 1 - cr/pr.
		if g := 1 - cr/pr; g > 0 {
			f.Crosses, f.CrossIn = true, seconds(left.Seconds()/g)
		}
	case lag > 0 && cr == 0:
		f.Crosses, f.CrossIn = true, left // stopped with a backlog: 1 s per s
	case lag > 0 && f.Drains && f.DrainETA > left:
		// Idle producer, draining backlog: the time lag grows at most 1 s
		// per s until drained; report the pessimistic bound.
		f.Crosses, f.CrossIn = true, left
	}
	return f
}

func seconds(s float64) time.Duration {
	if s > float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}

// Group combines the results of a group's partitions.
type Group struct {
	Status     Status
	Conditions []Status
	Lost       int64
	Forecast   Forecast
}

// Combine folds partition results into a group result: the worst status,
// summed rates, the latest drain (a group has drained when every partition
// has), the earliest SLA crossing.
func Combine(parts []Result) Group {
	var g Group
	g.Forecast.Known = len(parts) > 0
	g.Forecast.Drains = true
	seen := map[Status]bool{}
	for _, r := range parts {
		for _, c := range r.Conditions {
			seen[c] = true
		}
		g.Lost += r.Lost
		f := r.Forecast
		if !f.Known {
			g.Forecast.Known = false
		}
		g.Forecast.ProduceRate += f.ProduceRate
		g.Forecast.ConsumeRate += f.ConsumeRate
		if !f.Drains {
			g.Forecast.Drains = false
		} else {
			g.Forecast.DrainETA = max(g.Forecast.DrainETA, f.DrainETA)
		}
		if f.Crosses && (!g.Forecast.Crosses || f.CrossIn < g.Forecast.CrossIn) {
			g.Forecast.Crosses, g.Forecast.CrossIn = true, f.CrossIn
		}
	}
	if !g.Forecast.Drains {
		g.Forecast.DrainETA = 0
	}
	for s := range seen {
		g.Conditions = append(g.Conditions, s)
	}
	slices.SortFunc(g.Conditions, func(a, b Status) int { return int(b) - int(a) })
	g.Status = OK
	if len(g.Conditions) > 0 {
		g.Status = g.Conditions[0]
	}
	return g
}

// Advice is the scaling advice for a group.
type Advice struct {
	// Known is false when no consumption was observed (nothing to scale from).
	Known bool `json:"known"`
	// ConsumersNeeded is how many consumers drain the lag within the SLA at
	// the observed per-consumer rate, between 1 and the partition count.
	ConsumersNeeded int `json:"consumers_needed"`
	// ScaleFactor is the needed consumption rate over the observed one
	// (for consumers without group membership, such as Spark jobs).
	ScaleFactor float64 `json:"scale_factor"`
	// PartitionBound is true when even one consumer per partition is not
	// enough: the topic needs more partitions.
	PartitionBound bool `json:"partition_bound"`
}

// Advise computes the consumers a group needs. lag is the group's total
// offset lag, timeLag its largest time lag, members the consumers in the
// group now (0 for consumers that commit without membership, counted as 1).
//
// When the group drains within the SLA budget (SLA minus time lag) at
// current rates, it needs what it has. Otherwise the consumers are saturated,
// so the observed rate per consumer is their capacity, and the group needs
// produce rate + lag / budget of it; when the budget is already spent, one
// consumer per partition.
func Advise(f Forecast, lag int64, timeLag, sla time.Duration, members, partitions int) Advice {
	have := max(members, 1)
	partitions = max(partitions, 1)
	budget := sla - timeLag
	if lag == 0 || (f.Known && f.Drains && f.DrainETA <= budget) {
		return Advice{Known: true, ConsumersNeeded: min(have, partitions), ScaleFactor: 1}
	}
	if !f.Known || f.ConsumeRate <= 0 {
		return Advice{}
	}
	if budget <= 0 {
		return Advice{Known: true, ConsumersNeeded: partitions, ScaleFactor: float64(partitions) / float64(have), PartitionBound: have >= partitions}
	}
	need := f.ProduceRate + float64(lag)/budget.Seconds()
	factor := need / f.ConsumeRate
	n := int(math.Ceil(factor * float64(have)))
	a := Advice{Known: true, ConsumersNeeded: min(max(n, 1), partitions), ScaleFactor: round3(factor)}
	a.PartitionBound = n > partitions
	return a
}
