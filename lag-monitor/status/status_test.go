package status

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// pt is one sample in a table: committed offset (-1: never committed), end
// offset, time lag in seconds, and whether the group committed at this
// sample (a commit that moves the offset counts by itself).
type pt struct {
	c, e   int64
	tl     int
	commit bool
	start  int64 // log start offset
	tlu    bool  // time lag not read this poll
	// Transactions: rc makes the group read_committed with last stable
	// offset lso; nowork says only markers or aborted records lie between
	// the position and the readable end; txAge is the age in seconds of the
	// first record past lso.
	rc     bool
	lso    int64
	nowork bool
	txAge  int
}

// ring builds samples 10 s apart. Commit times come from the points: the
// time of the last sample where the offset moved or commit is set; with
// noCommitTimes they are unknown (no access to __consumer_offsets).
func ring(noCommitTimes bool, pts ...pt) []Sample {
	out := make([]Sample, len(pts))
	var lastCommit time.Time
	for i, p := range pts {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		moved := p.c >= 0 && (i == 0 || pts[i-1].c != p.c)
		if p.commit || (moved && i > 0) {
			lastCommit = at
		}
		s := Sample{At: at, End: p.e, LogStart: p.start, TimeLag: time.Duration(p.tl) * time.Second, TimeLagUnknown: p.tlu,
			LastStable: p.e, NoWork: p.nowork}
		if p.rc {
			s.ReadCommitted, s.LastStable, s.OpenTxnAge = true, p.lso, time.Duration(p.txAge)*time.Second
		}
		if p.c >= 0 {
			s.Committed, s.HasCommit = p.c, true
		}
		if !noCommitTimes {
			s.LastCommit = lastCommit
		}
		out[i] = s
	}
	return out
}

// params: a 60 s window (7 samples 10 s apart cover it), SLA 1h, horizon 30m.
// A transaction open 30 s is OPEN_TRANSACTION.
var params = Params{Window: 60 * time.Second, SLA: time.Hour, Horizon: 30 * time.Minute, OpenTxnAfter: 30 * time.Second}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noTimes    bool
		latest     bool // the group starts at the latest offset: Start is the first sample's end
		pts        []pt
		want       Status
		conditions []Status
		lost       int64
	}{
		{name: "empty ring", want: OK},
		{name: "idle and caught up for a long time", want: OK, pts: []pt{
			{c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100},
			{c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}}},
		{name: "idle and caught up, commit times unknown: never STOP", noTimes: true, want: OK, pts: []pt{
			{c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100},
			{c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}, {c: 100, e: 100}}},
		{name: "keeping up under load", want: OK, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 210, tl: 1}, {c: 300, e: 305, tl: 1}, {c: 400, e: 410, tl: 1},
			{c: 500, e: 500}, {c: 600, e: 610, tl: 1}, {c: 700, e: 710, tl: 1}, {c: 800, e: 805, tl: 1}}},
		{name: "lag growing steadily: WARN", want: Warn, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 220, tl: 2}, {c: 300, e: 330, tl: 3}, {c: 400, e: 440, tl: 4},
			{c: 500, e: 550, tl: 5}, {c: 600, e: 660, tl: 6}, {c: 700, e: 770, tl: 7}, {c: 800, e: 880, tl: 8}}},
		{name: "lag growing with a single dip: still WARN", want: Warn, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 220, tl: 2}, {c: 300, e: 330, tl: 3}, {c: 430, e: 440, tl: 1},
			{c: 500, e: 550, tl: 5}, {c: 600, e: 660, tl: 6}, {c: 700, e: 770, tl: 7}, {c: 800, e: 880, tl: 8}}},
		{name: "lag touching zero in the window: OK, not WARN", want: OK, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 220, tl: 2}, {c: 330, e: 330}, {c: 400, e: 440, tl: 4},
			{c: 500, e: 550, tl: 5}, {c: 600, e: 660, tl: 6}, {c: 700, e: 770, tl: 7}, {c: 800, e: 880, tl: 8}}},
		{name: "lag up and down: OK", want: OK, pts: []pt{
			{c: 100, e: 150, tl: 1}, {c: 200, e: 220, tl: 1}, {c: 300, e: 360, tl: 1}, {c: 400, e: 420, tl: 1},
			{c: 500, e: 560, tl: 1}, {c: 600, e: 620, tl: 1}, {c: 700, e: 760, tl: 1}, {c: 800, e: 820, tl: 1}}},
		{name: "window not covered yet: no WARN", want: OK, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 220, tl: 2}, {c: 300, e: 330, tl: 3}}},
		{name: "no commits for longer than the window while lag > 0: STOP", want: Stop, pts: []pt{
			{c: 500, e: 510, tl: 1}, {c: 500, e: 520, tl: 11}, {c: 500, e: 530, tl: 21}, {c: 500, e: 540, tl: 31},
			{c: 500, e: 550, tl: 41}, {c: 500, e: 560, tl: 51}, {c: 500, e: 570, tl: 61}, {c: 500, e: 580, tl: 71}}},
		{name: "same offset committed again and again while lag grows: STALL", want: Stall, pts: []pt{
			{c: 500, e: 510, tl: 1, commit: true}, {c: 500, e: 520, tl: 11, commit: true}, {c: 500, e: 530, tl: 21, commit: true},
			{c: 500, e: 540, tl: 31, commit: true}, {c: 500, e: 550, tl: 41, commit: true}, {c: 500, e: 560, tl: 51, commit: true},
			{c: 500, e: 570, tl: 61, commit: true}, {c: 500, e: 580, tl: 71, commit: true}}},
		{name: "not moving, commit times unknown: STOP (nothing shows it is alive)", noTimes: true, want: Stop, pts: []pt{
			{c: 500, e: 510, tl: 1}, {c: 500, e: 520, tl: 11}, {c: 500, e: 530, tl: 21}, {c: 500, e: 540, tl: 31},
			{c: 500, e: 550, tl: 41}, {c: 500, e: 560, tl: 51}, {c: 500, e: 570, tl: 61}, {c: 500, e: 580, tl: 71}}},
		{name: "stopped, but for less than the window: not yet STOP", want: OK, pts: []pt{
			{c: 100, e: 100}, {c: 200, e: 200}, {c: 300, e: 300}, {c: 400, e: 400},
			{c: 500, e: 510, tl: 1}, {c: 500, e: 520, tl: 11}, {c: 500, e: 530, tl: 21}, {c: 500, e: 540, tl: 31}}},
		{name: "idle producer, caught-up consumer; burst arrives in the last sample: not STOP", want: OK, pts: []pt{
			{c: 500, e: 500}, {c: 500, e: 500}, {c: 500, e: 500}, {c: 500, e: 500},
			{c: 500, e: 500}, {c: 500, e: 500}, {c: 500, e: 500}, {c: 500, e: 900, tl: 1}}},
		{name: "stopped with a fixed backlog, producer idle: STOP", want: Stop, pts: []pt{
			{c: 500, e: 900, tl: 100}, {c: 500, e: 900, tl: 110}, {c: 500, e: 900, tl: 120}, {c: 500, e: 900, tl: 130},
			{c: 500, e: 900, tl: 140}, {c: 500, e: 900, tl: 150}, {c: 500, e: 900, tl: 160}, {c: 500, e: 900, tl: 170}}},
		{name: "time lag over the SLA: BREACH", want: Breach, conditions: []Status{Breach, AtRisk}[:1], pts: []pt{
			{c: 100, e: 200, tl: 5400}}},
		{name: "time lag exactly the SLA is not over it", want: AtRisk, pts: []pt{
			{c: 100, e: 200, tl: 3590}, {c: 100, e: 200, tl: 3600}}},
		{name: "stopped and over the SLA: BREACH first, STOP also listed", want: Breach, conditions: []Status{Breach, Stop}, pts: []pt{
			{c: 500, e: 510, tl: 3601}, {c: 500, e: 520, tl: 3611}, {c: 500, e: 530, tl: 3621}, {c: 500, e: 540, tl: 3631},
			{c: 500, e: 550, tl: 3641}, {c: 500, e: 560, tl: 3651}, {c: 500, e: 570, tl: 3661}, {c: 500, e: 580, tl: 3671}}},
		{name: "log start passed the committed offset: DATA_LOSS with the count", want: DataLoss, lost: 150, pts: []pt{
			{c: 100, e: 300, tl: 10, start: 0}, {c: 110, e: 310, tl: 10, start: 50}, {c: 120, e: 320, tl: 10, start: 270}}},
		{name: "DATA_LOSS stays for the window after the consumer reset", want: DataLoss, lost: 150, pts: []pt{
			{c: 100, e: 300, tl: 10, start: 0}, {c: 120, e: 320, tl: 10, start: 270}, {c: 320, e: 320, start: 270}}},
		{name: "committed offset went back: REWIND", want: Rewind, pts: []pt{
			{c: 1000, e: 1000}, {c: 1000, e: 1000}, {c: 100, e: 1000, tl: 30}, {c: 400, e: 1000, tl: 20},
			{c: 700, e: 1000, tl: 10}, {c: 1000, e: 1000}}},
		{name: "only transaction markers past the committed offset for a window: OK, never STOP", want: OK, pts: []pt{
			{c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true},
			{c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true}, {c: 100, e: 103, nowork: true}}},
		{name: "the same offsets holding data records: STOP", want: Stop, pts: []pt{
			{c: 100, e: 103, tl: 1}, {c: 100, e: 103, tl: 11}, {c: 100, e: 103, tl: 21}, {c: 100, e: 103, tl: 31},
			{c: 100, e: 103, tl: 41}, {c: 100, e: 103, tl: 51}, {c: 100, e: 103, tl: 61}, {c: 100, e: 103, tl: 71}}},
		{name: "read_committed at the LSO behind an open transaction: OPEN_TRANSACTION, not STALL", want: OpenTransaction,
			conditions: []Status{OpenTransaction}, pts: []pt{
				{c: 100, e: 104, rc: true, lso: 100, txAge: 10, commit: true}, {c: 100, e: 108, rc: true, lso: 100, txAge: 20, commit: true},
				{c: 100, e: 112, rc: true, lso: 100, txAge: 30, commit: true}, {c: 100, e: 116, rc: true, lso: 100, txAge: 40, commit: true},
				{c: 100, e: 120, rc: true, lso: 100, txAge: 50, commit: true}, {c: 100, e: 120, rc: true, lso: 100, txAge: 60, commit: true},
				{c: 100, e: 120, rc: true, lso: 100, txAge: 70, commit: true}, {c: 100, e: 120, rc: true, lso: 100, txAge: 80, commit: true}}},
		{name: "read_committed, transaction open for less than the threshold: OK", want: OK, pts: []pt{
			{c: 100, e: 100, rc: true, lso: 100}, {c: 100, e: 100, rc: true, lso: 100}, {c: 100, e: 100, rc: true, lso: 100},
			{c: 100, e: 100, rc: true, lso: 100}, {c: 100, e: 100, rc: true, lso: 100}, {c: 100, e: 100, rc: true, lso: 100},
			{c: 100, e: 110, rc: true, lso: 100, txAge: 10}, {c: 100, e: 120, rc: true, lso: 100, txAge: 20}}},
		{name: "read_committed, stopped behind committed records and an open transaction: STOP and OPEN_TRANSACTION", want: Stop,
			conditions: []Status{Stop, OpenTransaction}, pts: []pt{
				{c: 100, e: 150, rc: true, lso: 130, txAge: 40, tl: 1}, {c: 100, e: 150, rc: true, lso: 130, txAge: 50, tl: 11},
				{c: 100, e: 150, rc: true, lso: 130, txAge: 60, tl: 21}, {c: 100, e: 150, rc: true, lso: 130, txAge: 70, tl: 31},
				{c: 100, e: 150, rc: true, lso: 130, txAge: 80, tl: 41}, {c: 100, e: 150, rc: true, lso: 130, txAge: 90, tl: 51},
				{c: 100, e: 150, rc: true, lso: 130, txAge: 100, tl: 61}, {c: 100, e: 150, rc: true, lso: 130, txAge: 110, tl: 71}}},
		{name: "read_uncommitted at the LSO: the open transaction's records are its lag: STOP", want: Stop, conditions: []Status{Stop}, pts: []pt{
			{c: 100, e: 120, tl: 1}, {c: 100, e: 120, tl: 11}, {c: 100, e: 120, tl: 21}, {c: 100, e: 120, tl: 31},
			{c: 100, e: 120, tl: 41}, {c: 100, e: 120, tl: 51}, {c: 100, e: 120, tl: 61}, {c: 100, e: 120, tl: 71}}},
		{name: "never committed, no records: OK", want: OK, pts: []pt{
			{c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}, {c: -1, e: 0}}},
		{name: "never committed, records waiting: UNCOMMITTED on the first poll", want: Uncommitted, conditions: []Status{Uncommitted}, pts: []pt{
			{c: -1, e: 50, tl: 60}}},
		{name: "never committed, old records waiting for a whole window: STOP and UNCOMMITTED", want: Stop, conditions: []Status{Stop, Uncommitted}, pts: []pt{
			{c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}}},
		{name: "never committed while records keep arriving for a window: STOP", want: Stop, conditions: []Status{Stop, Uncommitted}, pts: []pt{
			{c: -1, e: 50}, {c: -1, e: 60}, {c: -1, e: 70}, {c: -1, e: 80}, {c: -1, e: 90}, {c: -1, e: 100}, {c: -1, e: 110}, {c: -1, e: 120}}},
		{name: "never committed, every record deleted by retention (log start = end): OK", want: OK, pts: []pt{
			{c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50},
			{c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50}, {c: -1, e: 50, start: 50}}},
		{name: "never committed, the oldest waiting record is over the SLA: BREACH", want: Breach, pts: []pt{
			{c: -1, e: 50, tl: 3700}}},
		{name: "never committed, starts at latest, old records only: OK", latest: true, want: OK, pts: []pt{
			{c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 50}}},
		{name: "never committed, starts at latest, records arrived while watched: UNCOMMITTED", latest: true, want: Uncommitted, pts: []pt{
			{c: -1, e: 50}, {c: -1, e: 50}, {c: -1, e: 60}}},
		{name: "never committed, starts at latest, records arriving for a window: STOP", latest: true, want: Stop, conditions: []Status{Stop, Uncommitted}, pts: []pt{
			{c: -1, e: 50}, {c: -1, e: 60}, {c: -1, e: 70}, {c: -1, e: 80}, {c: -1, e: 90}, {c: -1, e: 100}, {c: -1, e: 110}, {c: -1, e: 120}}},
		{name: "lagging, time lag not read this poll: UNKNOWN, not OK", want: Unknown, conditions: []Status{Unknown}, pts: []pt{
			{c: 100, e: 110, tl: 1}, {c: 200, e: 210, tl: 1}, {c: 300, e: 310, tlu: true}}},
		{name: "caught up, time lag not read: OK (caught up means 0 s)", want: OK, pts: []pt{
			{c: 300, e: 300, tlu: true}}},
		{name: "never committed, records waiting, time lag not read: UNCOMMITTED and UNKNOWN", want: Uncommitted, conditions: []Status{Uncommitted, Unknown}, pts: []pt{
			{c: -1, e: 50, tlu: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ring(tc.noTimes, tc.pts...)
			if tc.latest {
				for i := range r {
					r[i].Reset, r[i].Start = Latest, r[0].End
				}
			}
			res := Evaluate(r, params)
			require.Equal(t, tc.want, res.Status, "conditions %v", res.Conditions)
			if tc.conditions != nil {
				require.Equal(t, tc.conditions, res.Conditions)
			}
			require.Equal(t, tc.lost, res.Lost)
		})
	}
}

func TestLagOfTransactionalPartitions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       Sample
		lag     int64
		openTxn int64
	}{
		{"read_uncommitted: end − committed", Sample{HasCommit: true, Committed: 100, End: 150, LastStable: 130}, 50, 0},
		{"read_committed: LSO − committed; the rest is an open transaction",
			Sample{HasCommit: true, Committed: 100, End: 150, LastStable: 130, ReadCommitted: true}, 30, 20},
		{"read_committed at the LSO", Sample{HasCommit: true, Committed: 130, End: 150, LastStable: 130, ReadCommitted: true}, 0, 20},
		{"committed past the LSO: the group reads uncommitted records after all",
			Sample{HasCommit: true, Committed: 140, End: 150, LastStable: 130, ReadCommitted: true}, 10, 0},
		{"only markers up to the readable end", Sample{HasCommit: true, Committed: 100, End: 103, LastStable: 103, NoWork: true}, 0, 0},
		{"never committed, earliest, read_committed: LSO − log start",
			Sample{LogStart: 10, End: 150, LastStable: 130, ReadCommitted: true}, 120, 20},
		{"never committed, earliest, only markers", Sample{LogStart: 10, End: 13, LastStable: 13, NoWork: true}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lag, ok := tc.s.Lag()
			require.True(t, ok)
			require.Equal(t, tc.lag, lag)
			require.Equal(t, tc.openTxn, tc.s.OpenTxn())
		})
	}
}

// An offset reset with no members: the committed offset drops once and
// stays. The status is REWIND while the drop is in the span "moved" looks
// at, then STOP — never OK for a poll in between (issue 21).
func TestRewindThenStopNeverOK(t *testing.T) {
	pts := []pt{{c: 1000, e: 1000}, {c: 1000, e: 1000}, {c: 1000, e: 1000}}
	for range 12 {
		pts = append(pts, pt{c: 800, e: 1000, tl: 30})
	}
	r := ring(true, pts...)
	var seen []Status
	for n := 4; n <= len(r); n++ {
		res := Evaluate(r[:n], params)
		seen = append(seen, res.Status)
		require.NotEqual(t, OK, res.Status, "poll %d: %v (so far %v)", n, res.Conditions, seen)
	}
	require.Equal(t, Rewind, seen[0])
	require.Equal(t, Stop, seen[len(seen)-1])
	// Exactly one change, from REWIND to STOP.
	require.Len(t, slices.Compact(slices.Clone(seen)), 2, "%v", seen)
}

// Rates follow the data: after a burst the produce rate falls to 0 once the
// producer has been idle for half a window, and a drain gets an ETA while
// it drains.
func TestRatesFollowTheData(t *testing.T) {
	// 10 s apart, window 60 s. A burst of 3000 at sample 1, then idle; the
	// consumer drains 100 per 10 s.
	pts := []pt{{c: 0, e: 0}, {c: 0, e: 3000, tl: 1}}
	for i := 1; i <= 10; i++ {
		pts = append(pts, pt{c: int64(100 * i), e: 3000, tl: 1})
	}
	r := ring(false, pts...)
	f := Predict(r, params)
	require.True(t, f.Known)
	require.Zero(t, f.ProduceRate, "idle for more than half a window")
	require.InDelta(t, 10.0, f.ConsumeRate, 1e-9)
	require.True(t, f.Drains)
	require.InDelta(t, 200.0, f.DrainETA.Seconds(), 1e-6) // lag 2000 at 10/s
	// While the burst is within the last half window it is the rate; the
	// first poll after that, the rate is 0 (a whole-window rate would still
	// say 3000 / 60 s = 50/s for another 30 s).
	f = Predict(r[:4], params) // last sample at 30 s, burst between 0 and 10 s
	require.True(t, f.Known)
	require.InDelta(t, 100.0, f.ProduceRate, 1e-9)
	f = Predict(r[:5], params) // last at 40 s: rates from 10 s on
	require.Zero(t, f.ProduceRate, "the burst is older than half a window")
	require.True(t, f.Drains)
}

// A poll that could not read a partition's offsets is UNKNOWN at least,
// whatever the earlier samples said; worse conditions from them stay.
func TestUnread(t *testing.T) {
	res := Unread(nil, params)
	require.Equal(t, Unknown, res.Status)
	res = Unread(ring(false, pt{c: 100, e: 100}, pt{c: 100, e: 100}), params)
	require.Equal(t, Unknown, res.Status, "caught up before is no proof now")
	require.Equal(t, []Status{Unknown}, res.Conditions)
	stopped := ring(false, pt{c: 500, e: 510, tl: 1}, pt{c: 500, e: 520, tl: 11}, pt{c: 500, e: 530, tl: 21}, pt{c: 500, e: 540, tl: 31},
		pt{c: 500, e: 550, tl: 41}, pt{c: 500, e: 560, tl: 51}, pt{c: 500, e: 570, tl: 61}, pt{c: 500, e: 580, tl: 71})
	res = Unread(stopped, params)
	require.Equal(t, Stop, res.Status, "one failed read does not resolve a STOP")
	require.Contains(t, res.Conditions, Unknown)
	require.Greater(t, Unknown, OK)
	require.Greater(t, Uncommitted, AtRisk)
}

func TestResetText(t *testing.T) {
	var r Reset
	require.NoError(t, r.UnmarshalText([]byte("latest")))
	require.Equal(t, Latest, r)
	b, _ := r.MarshalText()
	require.Equal(t, "latest", string(b))
	require.ErrorContains(t, r.UnmarshalText([]byte("none")), "earliest or latest")
}

func TestAtRiskWithinHorizon(t *testing.T) {
	// Consumer stopped 30 s ago with production going on: the time lag grows
	// at 1 - c/p and crosses a 2-minute SLA in under 13 minutes, inside a
	// 15-minute horizon but outside a 1-minute one.
	pts := []pt{{c: 100, e: 100}, {c: 200, e: 200}, {c: 300, e: 300}, {c: 400, e: 400},
		{c: 500, e: 510, tl: 1}, {c: 500, e: 520, tl: 11}, {c: 500, e: 530, tl: 21}, {c: 500, e: 540, tl: 30}}
	p := Params{Window: 60 * time.Second, SLA: 2 * time.Minute, Horizon: 15 * time.Minute}
	res := Evaluate(ring(false, pts...), p)
	require.Equal(t, AtRisk, res.Status)
	require.True(t, res.Forecast.Crosses)
	// Rates over the latest half window (30 s before the last sample: sample
	// 4 → 7): 30 records produced, none consumed, so the time lag grows 1 s
	// per s and crosses in SLA − 30 s.
	require.InDelta(t, 30.0/30, res.Forecast.ProduceRate, 1e-9)
	require.InDelta(t, 0, res.Forecast.ConsumeRate, 1e-9)
	require.InDelta(t, 90, res.Forecast.CrossIn.Seconds(), 0.01)
	p.Horizon = time.Minute
	require.NotContains(t, Evaluate(ring(false, pts...), p).Conditions, AtRisk)
}

func TestPredict(t *testing.T) {
	for _, tc := range []struct {
		name            string
		pts             []pt
		known, drains   bool
		eta             time.Duration
		crosses         bool
		crossIn         time.Duration
		produce, consum float64
	}{
		{name: "one sample: nothing known", pts: []pt{{c: 1, e: 2}}},
		{name: "draining a backlog, producer idle", known: true, drains: true, eta: 50 * time.Second,
			pts: []pt{{c: 0, e: 1000, tl: 10}, {c: 100, e: 1000, tl: 10}, {c: 200, e: 1000, tl: 10}, {c: 300, e: 1000, tl: 10},
				{c: 400, e: 1000, tl: 10}, {c: 500, e: 1000, tl: 10}, {c: 600, e: 1000, tl: 10}, {c: 700, e: 1000, tl: 10},
				{c: 800, e: 1000, tl: 10}}, produce: 0, consum: 10,
			// lag 200 at 10/s: 20 s. (window 60 s: samples 2..8)
		},
		{name: "caught up: drains now, never crosses", known: true, drains: true,
			pts:     []pt{{c: 10, e: 10}, {c: 20, e: 20}, {c: 30, e: 30}, {c: 40, e: 40}, {c: 50, e: 50}, {c: 60, e: 60}, {c: 70, e: 70}},
			produce: 1, consum: 1},
		{name: "falling behind: crosses at 1 - c/p", known: true, crosses: true, crossIn: 2 * 3590 * time.Second,
			pts:     []pt{{c: 0, e: 0}, {c: 50, e: 100, tl: 5}, {c: 100, e: 200, tl: 10}},
			produce: 10, consum: 5},
		{name: "stopped consumer with an idle producer: 1 s per s", known: true, crosses: true, crossIn: 3590 * time.Second,
			pts: []pt{{c: 0, e: 100, tl: 5}, {c: 0, e: 100, tl: 10}}},
		{name: "already over: crosses now", known: true, crosses: true, crossIn: 0,
			pts: []pt{{c: 0, e: 100, tl: 3700}, {c: 0, e: 100, tl: 3710}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Predict(ring(false, tc.pts...), Params{Window: 20 * time.Second, SLA: time.Hour, Horizon: time.Hour})
			require.Equal(t, tc.known, f.Known)
			if !tc.known {
				return
			}
			require.Equal(t, tc.drains, f.Drains)
			if tc.name == "draining a backlog, producer idle" {
				require.InDelta(t, 20.0, f.DrainETA.Seconds(), 1e-6)
			} else if tc.drains {
				require.Equal(t, tc.eta, f.DrainETA)
			}
			require.Equal(t, tc.crosses, f.Crosses)
			if tc.crosses {
				require.InDelta(t, tc.crossIn.Seconds(), f.CrossIn.Seconds(), 0.01)
			}
			require.InDelta(t, tc.produce, f.ProduceRate, 1e-9)
			require.InDelta(t, tc.consum, f.ConsumeRate, 1e-9)
		})
	}
}

func TestCombine(t *testing.T) {
	g := Combine([]Result{
		{Status: Warn, Conditions: []Status{Warn}, Forecast: Forecast{Known: true, ProduceRate: 1, ConsumeRate: 2, Drains: true, DrainETA: 5 * time.Second}},
		{Status: Stop, Conditions: []Status{Stop, AtRisk}, Lost: 0, Forecast: Forecast{Known: true, ProduceRate: 3, Crosses: true, CrossIn: time.Minute}},
		{Status: OK, Forecast: Forecast{Known: true, Drains: true, Crosses: true, CrossIn: time.Hour}},
	})
	require.Equal(t, Stop, g.Status)
	require.Equal(t, []Status{Stop, AtRisk, Warn}, g.Conditions)
	require.False(t, g.Forecast.Drains)
	require.Equal(t, time.Minute, g.Forecast.CrossIn)
	require.InDelta(t, 4.0, g.Forecast.ProduceRate, 0)
	require.Equal(t, OK, Combine(nil).Status)
}

func TestAdvise(t *testing.T) {
	f := Forecast{Known: true, ProduceRate: 100, ConsumeRate: 50}
	// Behind, not draining: need 100 + 36000/3600 = 110/s; 2 consumers do 50/s.
	a := Advise(f, 36000, 0, time.Hour, 2, 12)
	require.Equal(t, Advice{Known: true, ConsumersNeeded: 5, ScaleFactor: 2.2}, a)
	// Capped by partitions, flagged.
	a = Advise(f, 36000, 0, time.Hour, 2, 3)
	require.Equal(t, 3, a.ConsumersNeeded)
	require.True(t, a.PartitionBound)
	// Draining within the budget: keep what it has.
	a = Advise(Forecast{Known: true, ProduceRate: 10, ConsumeRate: 20, Drains: true, DrainETA: time.Minute}, 600, 0, time.Hour, 3, 6)
	require.Equal(t, Advice{Known: true, ConsumersNeeded: 3, ScaleFactor: 1}, a)
	// Stopped: nothing to scale from.
	require.False(t, Advise(Forecast{Known: true, ProduceRate: 10}, 600, time.Minute, time.Hour, 1, 6).Known)
	// Budget spent: one consumer per partition.
	require.Equal(t, 6, Advise(f, 10, 2*time.Hour, time.Hour, 1, 6).ConsumersNeeded)
	// Spark-style group without members counts as one consumer.
	require.Equal(t, 3, Advise(f, 36000, 0, time.Hour, 0, 12).ConsumersNeeded)
}

func TestStatusText(t *testing.T) {
	for _, s := range All() {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Status
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
	require.Error(t, new(Status).UnmarshalText([]byte("FINE")))
	b, err := json.Marshal(Forecast{Known: true, Drains: true, DrainETA: 2 * time.Second})
	require.NoError(t, err)
	require.JSONEq(t, `{"known":true,"produce_rate":0,"consume_rate":0,"drain_eta_seconds":2,"sla_crossing_in_seconds":null}`, string(b))
}
