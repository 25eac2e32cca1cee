package lagmon

import (
	"sync"
	"time"
)

// historyPoints is the resolution of each charted series.
const historyPoints = 360

// point is one charted value; a step keeps the worst value seen in it.
type point struct {
	At    time.Time
	Value float64
}

// series is a bounded, downsampled time series.
type series struct {
	points []point
}

func (s *series) add(at time.Time, v float64, span time.Duration) {
	step := max(span/historyPoints, time.Nanosecond)
	if n := len(s.points); n > 0 && at.Sub(s.points[n-1].At) < step {
		s.points[n-1].Value = max(s.points[n-1].Value, v)
	} else {
		s.points = append(s.points, point{at, v})
	}
	from := at.Add(-span)
	i := 0
	for i < len(s.points) && s.points[i].At.Before(from) {
		i++
	}
	s.points = s.points[i:]
}

// history keeps the last hours of lag and freshness in memory, for the
// status page's charts. It is lost on restart (Prometheus keeps the record).
type history struct {
	mu        sync.Mutex
	timeLag   map[string]*series // group → largest time lag, seconds
	lag       map[string]*series // group → total offset lag
	freshness map[string]*series // metric → largest tenant freshness, seconds
}

func newHistory() *history {
	return &history{timeLag: map[string]*series{}, lag: map[string]*series{}, freshness: map[string]*series{}}
}

func (h *history) add(snap *Snapshot, span time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	put := func(m map[string]*series, key string, v float64) {
		s := m[key]
		if s == nil {
			s = &series{}
			m[key] = s
		}
		s.add(snap.At, v, span)
	}
	live := map[string]bool{}
	for _, g := range snap.Groups {
		live[g.Group] = true
		if g.TimeLag.Known { // unknown is a gap in the chart, not a 0
			put(h.timeLag, g.Group, g.TimeLag.D.Seconds())
		}
		if g.Lag.Known {
			put(h.lag, g.Group, float64(g.Lag.N))
		}
	}
	for _, k := range keysOf(h.timeLag) {
		if !live[k] {
			delete(h.timeLag, k)
			delete(h.lag, k)
		}
	}
	liveM := map[string]bool{}
	for _, f := range snap.Freshness {
		var worst float64
		for _, t := range f.Tenants {
			worst = max(worst, t.Age.D.Seconds())
		}
		if len(f.Tenants) > 0 {
			liveM[f.Metric] = true
			put(h.freshness, f.Metric, worst)
		}
	}
	for _, k := range keysOf(h.freshness) {
		if !liveM[k] {
			delete(h.freshness, k)
		}
	}
}

// copyOf returns a copy of one series map.
func (h *history) copyOf(which string) map[string][]point {
	h.mu.Lock()
	defer h.mu.Unlock()
	src := map[string]map[string]*series{"time_lag": h.timeLag, "lag": h.lag, "freshness": h.freshness}[which]
	out := make(map[string][]point, len(src))
	for k, s := range src {
		out[k] = append([]point(nil), s.points...)
	}
	return out
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
