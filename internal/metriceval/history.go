package metriceval

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

// HistoryConfig says which past windows [History] makes: the same hours of
// each of the days before From, traffic from internal/gen.
type HistoryConfig struct {
	Seed    uint64
	Tenants int // tenant-01 … (gen's names)
	// From is the first hour of the span (truncated to the hour); Hours hours
	// from it are generated on each of the Days days before: From − d·24h,
	// d = 1..Days.
	From  time.Time
	Hours int
	Days  int
	// RecordsPerHour is each tenant's records per hour (on average: gen picks
	// each record's tenant at random). Counts and sums of the
	// history follow it, not a real hour's volume: choose the metrics whose
	// outputs do not depend on volume (a latency percentile) or match it.
	RecordsPerHour int
}

// Bounds of a history: what `hourglass gen history` accepts.
const (
	MaxHistoryDays           = 28
	MaxHistoryHours          = 24
	MaxHistoryTenants        = 1000
	MaxHistoryRecordsPerHour = 100_000
)

// Validate checks the bounds.
func (c HistoryConfig) Validate() error {
	switch {
	case c.Days < 1 || c.Days > MaxHistoryDays:
		return fmt.Errorf("history: days %d must be 1..%d", c.Days, MaxHistoryDays)
	case c.Hours < 1 || c.Hours > MaxHistoryHours:
		return fmt.Errorf("history: hours %d must be 1..%d", c.Hours, MaxHistoryHours)
	case c.Tenants < 1 || c.Tenants > MaxHistoryTenants:
		return fmt.Errorf("history: tenants %d must be 1..%d", c.Tenants, MaxHistoryTenants)
	case c.RecordsPerHour < 1 || c.RecordsPerHour > MaxHistoryRecordsPerHour:
		return fmt.Errorf("history: records per hour %d must be 1..%d", c.RecordsPerHour, MaxHistoryRecordsPerHour)
	case c.From.IsZero():
		return fmt.Errorf("history: no start hour")
	}
	return nil
}

// HistoryDoc is one metric document of a history, where the job would
// write it.
type HistoryDoc struct {
	Index, ID string
	Doc       map[string]any
}

// History generates the documents of metric m's windows of the given sizes
// (the window names, "1h") over the configured past hours: each hour's records
// come from gen (one generator per hour, seeded from Seed, the day and the
// hour), and each document is what the job writes for them ([Result.Document];
// computed_at is the window's end). Sorted by window start, size and _id.
func History(m catalog.Metric, sizes []string, cfg HistoryConfig) ([]HistoryDoc, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, s := range sizes {
		if !slices.ContainsFunc(m.Windows, func(w catalog.Duration) bool { return w.String() == s }) {
			return nil, fmt.Errorf("history: metric %s has no %s windows", m.Name, s)
		}
	}
	from := cfg.From.UTC().Truncate(time.Hour)
	var out []HistoryDoc
	for d := 1; d <= cfg.Days; d++ {
		for h := range cfg.Hours {
			start := from.Add(time.Duration(h)*time.Hour - time.Duration(d)*24*time.Hour)
			n := cfg.RecordsPerHour * cfg.Tenants
			g := gen.New(gen.Config{Seed: cfg.Seed ^ uint64(start.Unix()), Tenants: cfg.Tenants, Start: start,
				Rate: float64(n) / 3600})
			recs := make([]record.Record, n)
			for i := range recs {
				recs[i] = g.Next()
			}
			recs = Filter(m, recs)
			res := Evaluate(m, recs, nil)
			for _, w := range res.Windows {
				if !slices.Contains(sizes, w.Size) {
					continue
				}
				out = append(out, HistoryDoc{Index: res.Index(w), ID: res.DocID(w), Doc: res.Document(w, w.Start.Add(w.Length))})
			}
		}
	}
	slices.SortFunc(out, func(a, b HistoryDoc) int {
		sa, sb := a.Doc[catalog.DocWindow].(map[string]any), b.Doc[catalog.DocWindow].(map[string]any)
		return cmp.Or(cmp.Compare(sa[catalog.WindowStart].(string), sb[catalog.WindowStart].(string)),
			cmp.Compare(sa[catalog.WindowSize].(string), sb[catalog.WindowSize].(string)), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
