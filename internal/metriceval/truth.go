package metriceval

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/record"
)

// TruthDoc is one expected metric document of a truth file (`hourglass gen
// --truth`): what a metric job must write for the records generated.
type TruthDoc struct {
	Metric  string            `json:"metric"`
	ID      string            `json:"id"`
	Index   string            `json:"index"`
	Group   []string          `json:"group"`
	Window  TruthWindow       `json:"window"`
	Samples int64             `json:"samples"`
	Values  map[string]any    `json:"values"`
	Checks  map[string]string `json:"checks"`
}

// TruthWindow is a TruthDoc's window.
type TruthWindow struct {
	Size  string    `json:"size"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// WriteTruth writes, as NDJSON, the exact documents every metric of c
// should produce from recs (every record counted: records generated later
// than a metric's allowed lateness may instead be counted in its late
// index), by metric, window size, window start and group.
func WriteTruth(w io.Writer, c *catalog.Catalog, recs []record.Record) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, m := range c.Metrics {
		res := Evaluate(m, Filter(m, recs), nil)
		keys := make([]Key, 0, len(res.Windows))
		for k := range res.Windows {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b Key) int {
			return cmp.Or(cmp.Compare(a.Size, b.Size), a.Start.Compare(b.Start), cmp.Compare(a.Group, b.Group))
		})
		for _, k := range keys {
			win := res.Windows[k]
			doc := TruthDoc{Metric: m.Name, ID: res.DocID(win), Index: res.Index(win), Group: win.GroupValues,
				Window:  TruthWindow{Size: win.Size, Start: win.Start, End: win.Start.Add(win.Length)},
				Samples: win.Samples, Values: map[string]any{}, Checks: map[string]string{}}
			for _, want := range win.Wants(m) {
				doc.Checks[want.Field] = want.Check
				if want.Null {
					doc.Values[want.Field] = nil
				} else {
					doc.Values[want.Field] = want.Value
				}
			}
			if err := enc.Encode(doc); err != nil {
				return fmt.Errorf("metriceval: write truth: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("metriceval: write truth: %w", err)
	}
	return nil
}
